"""The engines a recommender serves, by name: one registry that serving
(``core.recsys.serving.Recommender``), the Recommend page and the API read, so an engine is
one entry (``register_engine``). Each entry says how it scores every catalogue item for known
users, what it needs (a trained model, a stored second stage) and how it explains an item.
"auto" is not an engine: it routes each user to one (``Recommender.route``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.recsys.scoring import user_embeddings

AUTO = "auto"
"""The choice that routes each user by history instead of naming an engine."""


@dataclass(frozen=True)
class Engine:
    """One way to rank items for a user."""

    name: str
    description: str
    scores: Callable[[Any, np.ndarray], np.ndarray]
    """(recommender, user rows) -> (rows, items): the score of every catalogue item, seen ones
    included."""
    needs_model: bool = False
    """Serves only with a trained two-tower model."""
    needs_ranker: bool = False
    """Serves only when the run stored a second stage."""
    candidates_only: bool = False
    """Items it did not rank score ``core.recsys.ranker.OUTSIDE`` and are never served."""
    explain: Callable[[Any, int, str], str] | None = None
    """(recommender, item index, what the item's content matched) -> why it is listed; None:
    what matched."""
    fallback: str | None = None
    """The engine that answers when no allowed item scores above 0 (a profile that matches
    nothing)."""


def _two_tower(recommender: Any, rows: np.ndarray) -> np.ndarray:
    embeddings = user_embeddings(
        recommender.model, recommender.catalogue, recommender.history, rows
    )
    return embeddings @ recommender.index.embeddings.T  # (rows, d) @ (d, items)


def _neighbourhood(name: str) -> Engine:
    return Engine(
        name,
        {"ease": "EASE: a closed-form item-item regression", "item_knn": "item-kNN"}[name],
        lambda recommender, rows: recommender.neighbours(name).scores(
            rows, recommender.history.matrix
        ),
        needs_model=True,  # rebuilt with the settings a trained run's evaluation tuned
        explain=lambda _r, _i, matched: f"often with items in this history ({name}); {matched}",
    )


ENGINES: dict[str, Engine] = {}
"""Engine name -> entry, in the order the pickers list them."""


def register_engine(engine: Engine) -> Engine:
    """Add ``engine`` (a name already registered is replaced)."""
    if engine.name == AUTO:
        raise ValueError(f"{AUTO!r} routes users; an engine needs another name")
    ENGINES[engine.name] = engine
    return engine


def engine(name: str) -> Engine:
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join([AUTO, *ENGINES])}")
    return ENGINES[name]


for _entry in (
    Engine(
        "two_tower",
        "the two-tower model: user and item embeddings",
        _two_tower,
        needs_model=True,
    ),
    Engine(
        "ranker",
        "the second stage: LightGBM re-ranking the engines' candidates",
        lambda recommender, rows: recommender.second_stage(rows),
        needs_model=True,
        needs_ranker=True,
        candidates_only=True,
        explain=lambda recommender, _i, matched: (
            f"ranked by the second stage over {', '.join(recommender.ranker.engines)}; {matched}"
        ),
    ),
    _neighbourhood("ease"),
    _neighbourhood("item_knn"),
    Engine(
        "content",
        "content-based: the user's stated skills and interests against the items'",
        lambda recommender, rows: recommender.content.scores(
            recommender.users.iloc[rows], recommender.history.matrix[rows]
        ),
        fallback="popularity",
    ),
    Engine(
        "popularity",
        "popularity: the most interacted-with items",
        lambda recommender, rows: np.tile(recommender.popularity.astype(float), (len(rows), 1)),
        explain=lambda recommender, i, _m: (
            f"popular: {int(recommender.popularity[i])} interactions"
        ),
    ),
):
    register_engine(_entry)
