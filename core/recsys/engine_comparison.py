"""Engines side by side for one known user: each engine's top items with its raw score and a
normalised one, the percentile of that score among the engine's scores of the whole catalogue
for this user (0 to 100 %). Raw scores are on each engine's own scale (inner products,
interaction counts, similarities); the percentile reads the same for every engine."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from core.recsys.serving import Recommendation, Recommender

LABELS = ("name", "item_id")
"""Item columns that name an item, the first one present shown."""


def percentiles(scores: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """0..100 for each chosen score: the share of ``scores`` at or below it."""
    ordered = np.sort(np.asarray(scores, dtype=float))
    below = np.searchsorted(ordered, np.asarray(chosen, dtype=float), side="right")
    return 100.0 * below / max(len(ordered), 1)


def score_format(values: np.ndarray, *, digits: int = 3, most: int = 8) -> str:
    """A printf format that shows ``digits`` significant digits of the smallest non-zero
    magnitude in ``values`` (at least ``digits`` decimals, at most ``most``); whole numbers
    (interaction counts) without decimals."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if len(finite) and np.all(finite == np.round(finite)):
        return "%.0f"
    magnitudes = np.abs(finite[finite != 0])
    if not len(magnitudes):
        return f"%.{digits}f"
    needed = digits - 1 - math.floor(math.log10(float(magnitudes.min())))
    return f"%.{min(max(needed, digits), most)}f"


def engine_top(
    recommender: Recommender, user_id: str, engine: str, *, limit: int = 10
) -> Recommendation:
    """The engine's top ``limit`` for a known user as a table: rank, the item's label,
    item_id, score (raw, unrounded) and normalised (its percentile, 0..100). The answer's
    engine is the one that ranked (content falls back to popularity when nothing matches)."""
    answer = recommender.recommend(user_id, limit=limit, engine=engine)
    scores = recommender.catalogue_scores(user_id, answer.engine)
    positions = recommender.catalogue.item_index.get_indexer(answer.items["item_id"])
    raw = scores[positions].astype(float)
    label = next(c for c in LABELS if c in answer.items)
    table = answer.items[list(dict.fromkeys(["rank", label, "item_id"]))].assign(
        score=raw, normalised=percentiles(scores, raw)
    )
    return dataclasses.replace(answer, items=table)


def shared_items(tops: dict[str, Recommendation]) -> dict[str, int]:
    """How many of each other engine's items are in the first engine's list."""
    if not tops:
        return {}
    first, *others = tops
    kept = set(tops[first].items["item_id"])
    return {name: len(kept & set(tops[name].items["item_id"])) for name in others}
