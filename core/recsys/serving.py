"""Serving: precomputed item embeddings, top-k (exact, or approximate with FAISS IVF or HNSW
for large catalogues), and cold / warm / hot routing (seed 004).

Routing by the number of interactions a user has (thresholds from the config):
- cold (< ``cold_max_interactions``, 5): content-based, from stated preferences and words,
  unless the run's evaluation found another engine ranks its cold test users better
  (``report["serve_cold"]``: the two-tower model on the online-retail splits);
- warm (5 .. ``hot_min_interactions``, 20) and hot (> 20): the engine the run's evaluation
  favours (``report["serve"]``, ``core.recsys.evaluation.serving_choice``): the two-tower
  model unless a baseline the server can rebuild (EASE, item-kNN, popularity) ranked its
  test users better, the reason saying so; content-based without a trained model.
Popularity is the last fallback (a profile with nothing to match). Items the user has
interacted with are never recommended; filters (``type=collaboration``) keep only matching
items. Every answer names its engine, why it was chosen, and per item what matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.recsys.baselines import Popularity
from core.recsys.catalogue import Catalogue
from core.recsys.config import TwoTowerConfig
from core.recsys.content import ContentModel
from core.recsys.engines import AUTO, ENGINES, MODEL, PROFILE, Engine, engine
from core.recsys.model import TwoTowerRecommender
from core.recsys.ranker import OUTSIDE, Context, SecondStage
from core.recsys.scoring import item_embeddings, user_embeddings

MAX_LIMIT = 100


class UnknownUser(KeyError):
    def __str__(self) -> str:
        return f"unknown user {self.args[0]!r}"


EXACT_BELOW = 100_000
"""Catalogues smaller than this are searched exactly when the config says ``auto``."""


def search_kind(setting: str, items: int) -> str:
    """The index a config's ``search`` setting means for a catalogue of ``items``: ``auto`` is
    exact below ``EXACT_BELOW`` items and HNSW from there when FAISS is installed."""
    if setting != "auto":
        return setting
    if items < EXACT_BELOW:
        return "exact"
    try:
        import faiss  # noqa: F401  (optional extra)
    except ImportError:
        return "exact"
    return "hnsw"


class ItemIndex:
    """Item embeddings searched by inner product: exactly (numpy, or a FAISS flat index), or
    approximately with FAISS (``ivf``: an inverted file of ``lists`` k-means cells, ``probes``
    of them searched; ``hnsw``: a graph of ``links`` neighbours per node, searched with a
    candidate list of ``breadth``). Seen or filtered items are dropped after the search, which
    asks for more results until ``k`` allowed ones are found.

    HNSW searches inner products directly: on 200k items shaped like a trained model's
    (``bench/cases_recsys.py``) a candidate list of 128 finds 0.996 of the exact top 10 in
    0.27 ms. IVF's k-means cells are Euclidean, and items of unequal norms (popular items grow
    longer) defeat them, so IVF searches the items with one coordinate added, sqrt(M^2 -
    |x|^2) for M the largest norm, and the query scaled to norm M with 0 there: the nearest
    item is then the one of largest inner product (Bachrach et al., 2014), and the scaled
    query lands among the items, where the cells are (128 of 1,788 cells: 0.92 of the top 10;
    0.89 by inner product directly). The same transform costs HNSW its recall (0.32 at the
    same candidate list): every item is then about as far from the query, and a graph walk
    needs contrast. Returned scores are the exact inner products of the items found."""

    KINDS = ("exact", "faiss_flat", "ivf", "hnsw")

    def __init__(
        self,
        embeddings: np.ndarray,
        *,
        kind: str = "exact",
        lists: int | None = None,
        probes: int = 64,
        links: int = 32,
        breadth: int = 128,
        seed: int = 0,
    ) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"search {kind!r} is not one of {', '.join(self.KINDS)}")
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.kind, self.breadth = kind, breadth
        self.faiss_index = None
        if kind == "exact":
            return
        import faiss  # optional extra: pip install faiss-cpu

        size, width = self.embeddings.shape
        if kind == "faiss_flat":
            self.faiss_index = faiss.IndexFlatIP(width)
            self.faiss_index.add(self.embeddings)
            return
        if kind == "hnsw":
            self.faiss_index = faiss.IndexHNSWFlat(width, links, faiss.METRIC_INNER_PRODUCT)
            self.faiss_index.hnsw.efConstruction = max(breadth, 2 * links)
            self.faiss_index.add(self.embeddings)
            return
        squares = np.einsum("ij,ij->i", self.embeddings, self.embeddings)
        self.largest_norm = float(np.sqrt(squares.max()))
        extra = np.sqrt(np.maximum(squares.max() - squares, 0.0))
        points = np.hstack([self.embeddings, extra[:, None].astype(np.float32)])
        lists = lists or max(1, min(size // 39, int(4 * np.sqrt(size))))
        quantizer = faiss.IndexFlatL2(width + 1)
        self.faiss_index = faiss.IndexIVFFlat(quantizer, width + 1, lists)
        sample = np.random.default_rng(seed).permutation(size)[: 64 * lists]
        self.faiss_index.train(points[np.sort(sample)])
        self.faiss_index.nprobe = min(probes, lists)
        self._quantizer = quantizer  # the index keeps a pointer to it, not a reference
        self.faiss_index.add(points)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best allowed items for one query vector: (indices, scores), best first."""
        query = np.asarray(query, dtype=np.float32).reshape(1, -1)
        if self.faiss_index is None:
            return best(self.embeddings @ query[0], k, allowed)
        size = len(self.embeddings)
        searched = query
        if self.kind == "faiss_flat":  # exact: ask for as many as could be excluded
            wanted = min(size, k + (0 if allowed is None else int(size - allowed.sum())))
        else:
            wanted = min(size, 2 * k)
        if self.kind == "ivf":  # onto the items' sphere, with 0 in the added coordinate
            scale = self.largest_norm / max(float(np.linalg.norm(query)), 1e-12)
            searched = np.hstack([query * scale, np.zeros((1, 1), dtype=np.float32)])
        while True:
            if self.kind == "hnsw":
                self.faiss_index.hnsw.efSearch = max(self.breadth, wanted)
            _, indices = self.faiss_index.search(searched, wanted)
            found = indices[0][indices[0] >= 0]
            if allowed is not None:
                found = found[allowed[found]]
            if len(found) >= k or wanted >= size:
                break
            wanted = min(size, 4 * wanted)
        scores = self.embeddings[found] @ query[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return found[order].astype(int), scores[order]


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
        search: str | None = None,
        report: dict | None = None,
        ranker: SecondStage | None = None,
    ) -> None:
        self.model, self.catalogue, self.config = model, catalogue, config
        self.ranker, self.interactions = ranker, interactions
        self._ranked: tuple[dict, Context] | None = None
        self.report = report or {}
        choice = self.report.get("serve") or {}
        self.served = choice.get("engine", MODEL)
        self.served_because = choice.get("reason", "")
        cold = self.report.get("serve_cold") or {}
        self.served_cold = cold.get("engine", PROFILE)
        self.served_cold_because = cold.get("reason", "")
        self.neighbourhood: dict[str, Any] = {}
        self.items = catalogue.data.items.reset_index(drop=True)
        self.users = catalogue.data.users.reset_index(drop=True)
        self.history = catalogue.history(interactions)
        self.seen = catalogue.matrix(interactions)
        self.counts = interactions.groupby("user_id").size()
        self.content = ContentModel(catalogue.encoder, self.items)
        self.popularity = Popularity(self.history.matrix).counts
        self.index = None
        if model is not None:
            kind = search_kind(search or config.search, len(self.items))
            self.index = ItemIndex(item_embeddings(model, catalogue), kind=kind)
        usable = self.engines(auto=False)
        if self.served not in usable:  # a run of an earlier version, or no model
            self.served_because = f"the {self.served} engine cannot be rebuilt from this run"
            self.served = MODEL
        if self.served_cold not in usable:
            self.served_cold = PROFILE

    def engines(self, *, auto: bool = True) -> list[str]:
        """The engines this recommender can serve, in the registry's order (``auto`` first
        unless left out): those needing a trained model only with one, the second stage only
        when the run stored one."""
        usable = [name for name, entry in ENGINES.items() if self.can_serve(entry)]
        return [AUTO, *usable] if auto else usable

    def can_serve(self, entry: Engine) -> bool:
        return (
            entry.served
            and (not entry.needs_model or self.index is not None)
            and (not entry.needs_ranker or self.ranker is not None)
        )

    def route(self, user_id: str) -> tuple[str, str]:
        count = int(self.counts.get(user_id, 0))
        cold, hot = self.config.cold_max_interactions, self.config.hot_min_interactions
        if count < cold:
            start = f"cold start: {count} interactions (fewer than {cold})"
            if self.served_cold == PROFILE:
                return PROFILE, start
            return self.served_cold, f"{start}; {self.served_cold_because}"
        tier = "hot" if count > hot else "warm"
        if self.index is None:
            return PROFILE, f"{tier}: {count} interactions, but no trained model is active"
        if self.served != MODEL:
            return self.served, f"{tier}: {count} interactions; {self.served_because}"
        return MODEL, f"{tier}: {count} interactions, enough history for {engine(MODEL).named}"

    def neighbours(self, name: str) -> Any:
        """What a neighbourhood engine (EASE, item-kNN) scores with, rebuilt from every known
        interaction with the run's tuned settings (on first use)."""
        if name not in self.neighbourhood:
            settings = self.report.get("settings", {}).get(name, {})
            self.neighbourhood[name] = engine(name).rebuild(self.history.matrix, settings)
        return self.neighbourhood[name]

    def second_stage(self, rows: np.ndarray) -> np.ndarray:
        """(rows, items) scores of the run's second stage over every known interaction:
        its ranking of the engines' candidates, ``OUTSIDE`` for the other items."""
        if self.ranker is None or self.index is None or self.model is None:
            raise ValueError("this run has no second stage (ranker) to serve")
        if self._ranked is None:
            scorers = {
                name: (lambda rows, name=name: engine(name).scores(self, rows))
                for name in self.ranker.engines
            }
            self._ranked = (scorers, Context.of(self.catalogue, self.interactions))
        scorers, context = self._ranked
        return self.ranker.scorer(scorers, self.seen, context)(rows)

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
        engine: str = AUTO,
        filters: dict[str, str] | None = None,
    ) -> Recommendation:
        name = engine
        if user_id not in self.catalogue.user_index:
            raise UnknownUser(user_id)
        row = int(self.catalogue.user_index.get_loc(user_id))
        if name == AUTO:
            name, reason = self.route(user_id)
        else:
            reason = f"{name} engine chosen by the caller"
        entry = self._usable(name)
        allowed = self.allowed(filters, self.seen[[row]].toarray()[0] > 0)
        user = self.users.iloc[[row]]
        if entry.indexed:  # the item index: exact, or approximate at scale
            query = user_embeddings(self.model, self.catalogue, self.history, np.array([row]))[0]
            indices, scores = self.index.search(query, _bounded(limit), allowed)
            return self._answer(user_id, entry, reason, user, indices, scores)
        scores = entry.scores(self, np.array([row]))[0]
        if entry.candidates_only:
            allowed = allowed & (scores > OUTSIDE)
        if entry.fallback and not np.any(scores[allowed] > 0):
            reason = f"{reason}; nothing in the profile matched, so {entry.fallback}"
            entry = self._usable(entry.fallback)  # ``engine`` is the caller's choice here
            scores = entry.scores(self, np.array([row]))[0]
        indices, values = best(scores, _bounded(limit), allowed)
        return self._answer(user_id, entry, reason, user, indices, values)

    def _usable(self, name: str) -> Engine:
        entry = engine(name)
        if not self.can_serve(entry):
            needed = (
                "what the run did not keep (it is judged only)"
                if not entry.served
                else "a stored second stage"
                if entry.needs_ranker
                else "a trained model"
            )
            raise ValueError(f"the {name} engine needs {needed}, which this run has not")
        return entry

    def catalogue_scores(self, user_id: str, name: str) -> np.ndarray:
        """(items,) one engine's score of every catalogue item for a known user, seen items
        included (``name`` is a concrete engine, not ``auto``; two-tower scores are exact)."""
        if user_id not in self.catalogue.user_index:
            raise UnknownUser(user_id)
        rows = np.array([int(self.catalogue.user_index.get_loc(user_id))])
        return self._usable(name).scores(self, rows)[0]

    def recommend_profile(
        self, profile: dict[str, str], *, limit: int = 10, filters: dict[str, str] | None = None
    ) -> Recommendation:
        """A new user described by profile fields (a cold start): content-based."""
        columns = {c: profile.get(c, "") for c in self.users.columns if c != "user_id"}
        user = pd.DataFrame([{"user_id": None, **columns}])
        allowed = self.allowed(filters, None)
        reason = "new user: content-based from the stated profile"
        entry = engine(PROFILE)
        scores = self.content.scores(user, None)[0]
        if not np.any(scores[allowed] > 0):
            reason = f"{reason}; nothing in the profile matched, so {entry.fallback}"
            entry = engine(entry.fallback)
            scores = entry.scores(self, np.zeros(1, dtype=int))[0]
        indices, values = best(scores, _bounded(limit), allowed)
        return self._answer(None, entry, reason, user, indices, values)

    def _answer(self, user_id, entry, reason, user, indices, scores) -> Recommendation:
        profile = user.iloc[0]
        why = [self.content.reasons(profile, int(i)) for i in indices]
        if entry.explain is not None:
            why = [entry.explain(self, int(i), w) for i, w in zip(indices, why, strict=True)]
        table = self.items.iloc[indices].reset_index(drop=True)
        table.insert(0, "why", why)
        table.insert(0, "score", np.round(np.asarray(scores, dtype=float), 4))
        table.insert(0, "rank", np.arange(1, len(indices) + 1))
        return Recommendation(user_id, entry.name, reason, table)


def _bounded(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return limit
