"""Ranking metrics at k, with the definitions of the recommender literature.

For each evaluated user u with relevant set R_u (non-empty) and ranked list L_u (the top k
of a full ranking over the catalogue, items u met in training removed):

- Precision@k = |L_u ∩ R_u| / k (a list shorter than k still divides by k);
- Recall@k = |L_u ∩ R_u| / |R_u|;
- F1@k = the harmonic mean of that user's precision and recall (0 when both are 0);
- HitRate@k = 1 if L_u ∩ R_u is non-empty;
- NDCG@k = DCG / IDCG with DCG = sum over ranks r (1-based) of rel_r / log2(r + 1) and IDCG
  the DCG of min(|R_u|, k) relevant items at the top (binary relevance);
- MAP@k = mean over users of AP@k = (1 / min(|R_u|, k)) * sum over relevant ranks r of
  Precision@r (the normaliser min(|R_u|, k), so a perfect list scores 1).

Every metric is the mean over evaluated users. Users without any relevant test item are
skipped and counted (``users_skipped``). Catalogue coverage = distinct items shown in any
user's top k / catalogue size. Ties in scores rank the lower item index first (a stable
sort), so results repeat exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """(users, items) scores -> (users, k) item indices, best first; ``exclude`` (a boolean
    mask of the same shape) removes items. Excluded items never appear; if fewer than k
    remain, the row is padded with -1. A partial selection first (linear in the items), then
    a sort of the few candidates: ties rank the lower index first, as a stable full sort."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None:
        scores[exclude] = -np.inf
    users, items = scores.shape
    k = min(k, items)
    if k == 0:
        return np.full((users, 0), -1, dtype=int)
    if k < items:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        threshold = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        tied = (scores >= threshold).sum(axis=1) > k  # ties at the cut: pick by index
        part[tied] = np.argsort(-scores[tied], axis=1, kind="stable")[:, :k]
    else:
        part = np.broadcast_to(np.arange(items), (users, items)).copy()
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -values), axis=1)  # by score, then by index
    order_items = np.take_along_axis(part, order, axis=1)
    ranked = np.take_along_axis(values, order, axis=1)
    return np.where(np.isfinite(ranked), order_items, -1)


METRICS = ("precision", "recall", "f1", "hit_rate", "ndcg", "map")


def per_user_metrics(
    ranked: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int
) -> dict[str, np.ndarray]:
    """Each metric per evaluated user (users with at least one relevant item, in order),
    the draws that intervals resample (see the module docstring)."""
    values: dict[str, list[float]] = {name: [] for name in METRICS}
    discounts = 1 / np.log2(np.arange(2, k + 2))
    for items, wanted in zip(ranked, relevant, strict=True):
        if not wanted:
            continue
        hits = np.array([item in wanted for item in list(items)[:k] if item >= 0], dtype=float)
        found = hits.sum()
        precision, recall = found / k, found / len(wanted)
        values["precision"].append(precision)
        values["recall"].append(recall)
        values["f1"].append(2 * precision * recall / (precision + recall) if found else 0.0)
        values["hit_rate"].append(float(found > 0))
        ideal = discounts[: min(len(wanted), k)].sum()
        values["ndcg"].append(float((hits * discounts[: len(hits)]).sum() / ideal))
        precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        values["map"].append(float((precision_at * hits).sum() / min(len(wanted), k)))
    return {f"{name}@{k}": np.asarray(v, dtype=float) for name, v in values.items()}


def ranking_metrics(
    ranked: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int
) -> dict[str, float]:
    """Mean metrics over users with at least one relevant item (see the module docstring)."""
    per_user = per_user_metrics(ranked, relevant, k)
    evaluated = len(per_user[f"ndcg@{k}"])
    result = {name: float(v.mean()) if evaluated else 0.0 for name, v in per_user.items()}
    result["users_evaluated"] = float(evaluated)
    result["users_skipped"] = float(len(relevant) - evaluated)
    return result


def catalogue_coverage(ranked: np.ndarray, catalogue_size: int) -> float:
    shown = np.unique(np.asarray(ranked)[np.asarray(ranked) >= 0])
    return float(len(shown) / catalogue_size)
