"""Ranking a segment of users (validation or test) against the full catalogue: the users to
rank for, the items relevant to each, the items masked, and the metrics of any scorer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import sparse

from core.recsys.catalogue import Catalogue
from core.recsys.data import RELEVANT_MIN_LABEL, labelled
from core.recsys.metrics import catalogue_coverage, per_user_metrics, ranking_metrics, top_k

K = 10
PRIMARY = f"ndcg@{K}"
"""The metric engines are compared and tuned on."""
SCORE_CELLS = 1 << 24
"""Scores held at once when ranking the full catalogue (16M: 128 MB as float64): users are
ranked in blocks of ``evaluation_block`` rows."""
MAX_BLOCK_USERS = 1024

Scorer = Callable[[np.ndarray], np.ndarray]


def evaluation_block(items: int) -> int:
    """Users ranked at once against ``items`` items: at most 1,024, fewer for big catalogues."""
    return max(1, min(MAX_BLOCK_USERS, SCORE_CELLS // max(items, 1)))


class Segment:
    """One evaluation segment prepared once: the users to rank for, the items relevant to
    each (label of at least ``RELEVANT_MIN_LABEL``), and the items to mask (seen before)."""

    def __init__(
        self,
        catalogue: Catalogue,
        segment: pd.DataFrame,
        seen: pd.DataFrame | sparse.csr_matrix,
        *,
        users: set[str] | None = None,
    ) -> None:
        self.catalogue = catalogue
        active = set(segment["user_id"]) if users is None else set(segment["user_id"]) & users
        self.rows = np.sort(catalogue.user_index.get_indexer(sorted(active))).astype(np.int64)
        events = labelled(segment)
        events = events[events["label"] >= RELEVANT_MIN_LABEL]
        user, item = catalogue.codes(events)
        relevant: dict[int, set[int]] = {}
        for u, i in zip(user.tolist(), item.tolist(), strict=True):
            relevant.setdefault(u, set()).add(i)
        self.relevant = [relevant.get(int(u), set()) for u in self.rows]
        self.seen = seen if sparse.issparse(seen) else catalogue.matrix(seen)

    def ranked(self, scorer: Scorer, k: int = K) -> np.ndarray:
        """(users, k) top items of ``scorer``: full ranking, seen items masked, in blocks."""
        block = evaluation_block(len(self.catalogue.item_ids))
        ranked = [np.zeros((0, k), dtype=int)]
        for start in range(0, len(self.rows), block):
            rows = self.rows[start : start + block]
            exclude = self.seen[rows].toarray() > 0  # (block, items)
            ranked.append(top_k(scorer(rows), k, exclude))
        return np.concatenate(ranked)

    def metrics(self, scorer: Scorer, k: int = K) -> dict[str, float]:
        """Mean ranking metrics of ``scorer`` and its catalogue coverage."""
        return self.figures(scorer, k)[0]

    def figures(self, scorer: Scorer, k: int = K) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Mean metrics (with coverage) and each metric per evaluated user."""
        if len(self.rows) == 0:
            empty = {f"{name}@{k}": np.zeros(0) for name in ("ndcg",)}
            return {f"ndcg@{k}": 0.0, "users_evaluated": 0.0, "users_skipped": 0.0}, empty
        ranked = self.ranked(scorer, k)
        result = ranking_metrics(ranked, self.relevant, k)
        result[f"coverage@{k}"] = catalogue_coverage(ranked, len(self.catalogue.item_ids))
        return result, per_user_metrics(ranked, self.relevant, k)


def rank_segment(
    catalogue: Catalogue,
    scorer: Scorer,
    segment: pd.DataFrame,
    seen: pd.DataFrame | sparse.csr_matrix,
    *,
    users: set[str] | None = None,
    k: int = K,
) -> dict[str, float]:
    """Ranking metrics of ``scorer`` on the users active in ``segment`` (optionally only
    ``users``): full ranking, items in ``seen`` excluded, relevance from ``segment``."""
    return Segment(catalogue, segment, seen, users=users).metrics(scorer, k)
