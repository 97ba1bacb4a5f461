"""Serving: precomputed item embeddings, top-k, and cold / warm / hot routing (seed 004).

Routing by the number of interactions a user has (thresholds from the config):
- cold (< ``cold_max_interactions``, 5): content-based, from stated preferences and words;
- warm (5 .. ``hot_min_interactions``, 20): two-tower, or content-based without a model;
- hot (> 20): two-tower.
Popularity is the last fallback (a profile with nothing to match). Items the user has
interacted with are never recommended; filters (``type=collaboration``) keep only matching
items. Every answer names its engine, why it was chosen, and per item what matched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from core.recsys.baselines import ContentModel, Popularity, interaction_matrix
from core.recsys.config import TwoTowerConfig
from core.recsys.model import TwoTowerRecommender
from core.recsys.training import Catalogue

ENGINES = ("auto", "two_tower", "content", "popularity")
MAX_LIMIT = 100


class UnknownUser(KeyError):
    def __str__(self) -> str:
        return f"unknown user {self.args[0]!r}"


class ItemIndex:
    """Item embeddings searched by exact inner product (numpy), or by a FAISS flat
    inner-product index when ``use_faiss`` and the package is installed."""

    def __init__(self, embeddings: np.ndarray, *, use_faiss: bool = False) -> None:
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.faiss_index = None
        if use_faiss:
            import faiss  # optional extra: pip install faiss-cpu

            self.faiss_index = faiss.IndexFlatIP(self.embeddings.shape[1])
            self.faiss_index.add(self.embeddings)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best allowed items for one query vector: (indices, scores), best first."""
        query = np.asarray(query, dtype=np.float32).reshape(1, -1)
        if self.faiss_index is not None:
            wanted = k if allowed is None else k + int((~allowed).sum())
            scores, indices = self.faiss_index.search(query, min(wanted, len(self.embeddings)))
            keep = [
                (i, s)
                for i, s in zip(indices[0], scores[0], strict=True)
                if i >= 0 and (allowed is None or allowed[i])
            ][:k]
            return np.array([i for i, _ in keep], dtype=int), np.array([s for _, s in keep])
        scores = self.embeddings @ query[0]
        return best(scores, k, allowed)


def best(
    scores: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top k of one score vector among allowed items, ties to the lower index."""
    candidates = np.flatnonzero(allowed) if allowed is not None else np.arange(len(scores))
    if len(candidates) > k:  # partial selection first: O(n) for big catalogues
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        threshold = scores[candidates][part].min()
        candidates = candidates[scores[candidates] >= threshold]
    order = candidates[np.argsort(-scores[candidates], kind="stable")][:k]
    return order, scores[order]


@dataclass
class Recommendation:
    user_id: str | None
    engine: str
    reason: str
    items: pd.DataFrame
    """rank, item_id, score, why, and the item's own columns."""


class Recommender:
    """A trained model (or none) with the catalogue and the interactions known so far."""

    def __init__(
        self,
        model: TwoTowerRecommender | None,
        catalogue: Catalogue,
        interactions: pd.DataFrame,
        config: TwoTowerConfig,
        *,
        use_faiss: bool = False,
    ) -> None:
        self.model, self.catalogue, self.config = model, catalogue, config
        self.items = catalogue.data.items.reset_index(drop=True)
        self.users = catalogue.data.users.reset_index(drop=True)
        self.history = catalogue.history(interactions)
        self.seen = interaction_matrix(interactions, catalogue.user_index, catalogue.item_index) > 0
        self.counts = interactions.groupby("user_id").size()
        self.content = ContentModel(catalogue.encoder, self.items)
        self.popularity = Popularity(self.history).counts
        self.index = None
        if model is not None:
            model.eval()
            with torch.no_grad():
                embeddings = model.item_tower(torch.from_numpy(catalogue.item_features)).numpy()
            self.index = ItemIndex(embeddings, use_faiss=use_faiss)

    def route(self, user_id: str) -> tuple[str, str]:
        count = int(self.counts.get(user_id, 0))
        cold, hot = self.config.cold_max_interactions, self.config.hot_min_interactions
        if count < cold:
            return "content", f"cold start: {count} interactions (fewer than {cold})"
        tier = "hot" if count > hot else "warm"
        if self.index is None:
            return "content", f"{tier}: {count} interactions, but no trained model is active"
        return "two_tower", f"{tier}: {count} interactions, enough history for the two-tower model"

    def allowed(self, filters: dict[str, str] | None, seen: np.ndarray | None) -> np.ndarray:
        allowed = np.ones(len(self.items), dtype=bool) if seen is None else ~seen
        for column, value in (filters or {}).items():
            if column not in self.items.columns or column == "item_id":
                known = ", ".join(c for c in self.items.columns if c != "item_id")
                raise ValueError(f"cannot filter on {column!r}; item fields: {known}")
            allowed &= self.items[column].astype(str).str.lower().to_numpy() == str(value).lower()
        return allowed

    def recommend(
        self,
        user_id: str,
        *,
        limit: int = 10,
        engine: str = "auto",
        filters: dict[str, str] | None = None,
    ) -> Recommendation:
        if user_id not in self.catalogue.user_index:
            raise UnknownUser(user_id)
        row = self.catalogue.user_index[user_id]
        if engine == "auto":
            engine, reason = self.route(user_id)
        else:
            reason = f"{engine} engine chosen by the caller"
        allowed = self.allowed(filters, self.seen[row])
        user = self.users.iloc[[row]]
        if engine == "two_tower":
            if self.index is None or self.model is None:
                raise ValueError("no trained two-tower model is active")
            with torch.no_grad():
                inputs = torch.from_numpy(self.catalogue.user_inputs(np.array([row]), self.history))
                query = self.model.user_tower(inputs).numpy()[0]
            indices, scores = self.index.search(query, _bounded(limit), allowed)
            return self._answer(user_id, engine, reason, user, indices, scores)
        return self._by_scores(user_id, engine, reason, user, self.history[[row]], limit, allowed)

    def recommend_profile(
        self, profile: dict[str, str], *, limit: int = 10, filters: dict[str, str] | None = None
    ) -> Recommendation:
        """A new user described by profile fields (a cold start): content-based."""
        columns = {c: profile.get(c, "") for c in self.users.columns if c != "user_id"}
        user = pd.DataFrame([{"user_id": None, **columns}])
        allowed = self.allowed(filters, None)
        reason = "new user: content-based from the stated profile"
        return self._by_scores(None, "content", reason, user, None, limit, allowed)

    def _by_scores(self, user_id, engine, reason, user, history, limit, allowed) -> Recommendation:
        if engine not in ("content", "popularity"):
            raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
        scores = self.content.scores(user, history)[0] if engine == "content" else None
        if scores is not None and not np.any(scores[allowed] > 0):
            engine, reason = (
                "popularity",
                reason + "; nothing in the profile matched, so popularity",
            )
            scores = None
        if scores is None:
            scores = self.popularity.astype(float)
        indices, values = best(scores, _bounded(limit), allowed)
        return self._answer(user_id, engine, reason, user, indices, values)

    def _answer(self, user_id, engine, reason, user, indices, scores) -> Recommendation:
        profile = user.iloc[0]
        why = [self.content.reasons(profile, int(i)) for i in indices]
        if engine == "popularity":
            why = [f"popular: {int(self.popularity[i])} interactions" for i in indices]
        table = self.items.iloc[indices].reset_index(drop=True)
        table.insert(0, "why", why)
        table.insert(0, "score", np.round(np.asarray(scores, dtype=float), 4))
        table.insert(0, "rank", np.arange(1, len(indices) + 1))
        return Recommendation(user_id, engine, reason, table)


def _bounded(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return limit
