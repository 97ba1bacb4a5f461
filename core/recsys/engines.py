"""The engines a recommender ranks with, by name: one registry (``ENGINES``) that the
evaluation (which engines are tuned, judged and may be served), serving
(``core.recsys.serving.Recommender``), the Recommend page and the API read, so an engine is
one entry (``register_engine``). Each entry says how it is fitted and tuned on a run's
training events, how a server scores every catalogue item with it, what it needs (a trained
model, a stored second stage), which users the automatic choice may give it, and how it
explains an item. "auto" is not an engine: it routes each user to one
(``Recommender.route``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from core.recsys.scoring import user_embeddings
from core.recsys.tuning import (
    Tuned,
    Tuning,
    rebuild_ease,
    rebuild_item_knn,
    tune_bpr,
    tune_content,
    tune_ease,
    tune_item_knn,
    tune_popularity,
)

AUTO = "auto"
"""The choice that routes each user by history instead of naming an engine."""
MODEL = "two_tower"
"""The trained model's engine (and the recommender's model name)."""
SECOND_STAGE = "ranker"
"""The engine that re-ranks the other engines' candidates."""
PROFILE = "content"
"""The engine that ranks for a stated profile: new users, and cold ones by default."""


@dataclass(frozen=True)
class Engine:
    """One way to rank items for a user."""

    name: str
    description: str
    scores: Callable[[Any, np.ndarray], np.ndarray] | None
    """(recommender, user rows) -> (rows, items): the score of every catalogue item, seen ones
    included; None: judged in the evaluation, never served (what it learnt is not kept)."""
    title: str = ""
    """How sentences name it ("the two-tower model"); empty: its name."""
    tune: Callable[[Tuning], Tuned] | None = None
    """Fitted on the training events with settings chosen on validation (the evaluation's
    baselines); None: trained elsewhere (the model, the second stage)."""
    rebuild: Callable[[sparse.csr_matrix, dict[str, float]], Any] | None = None
    """(every known interaction, the run's tuned settings) -> what ``scores`` reads
    (``Recommender.neighbours``)."""
    needs_model: bool = False
    """Serves only with a trained two-tower model."""
    needs_ranker: bool = False
    """Serves only when the run stored a second stage."""
    candidates_only: bool = False
    """Items it did not rank score ``core.recsys.ranker.OUTSIDE`` and are never served."""
    indexed: bool = False
    """Served from the item index (exact, or approximate at scale) rather than by scoring the
    whole catalogue."""
    proposes: bool = False
    """Its top candidates and scores feed the second stage."""
    warm: bool = True
    """The automatic choice may give it warm and hot users (every engine may be chosen for
    cold ones)."""
    explain: Callable[[Any, int, str], str] | None = None
    """(recommender, item index, what the item's content matched) -> why it is listed; None:
    what matched."""
    fallback: str | None = None
    """The engine that answers when no allowed item scores above 0 (a profile that matches
    nothing)."""

    @property
    def named(self) -> str:
        return self.title or self.name

    @property
    def served(self) -> bool:
        return self.scores is not None


def _two_tower(recommender: Any, rows: np.ndarray) -> np.ndarray:
    embeddings = user_embeddings(
        recommender.model, recommender.catalogue, recommender.history, rows
    )
    return embeddings @ recommender.index.embeddings.T  # (rows, d) @ (d, items)


def _neighbourhood(
    name: str, description: str, tune: Callable[[Tuning], Tuned], rebuild: Callable
) -> Engine:
    return Engine(
        name,
        description,
        lambda recommender, rows: recommender.neighbours(name).scores(
            rows, recommender.history.matrix
        ),
        tune=tune,
        rebuild=rebuild,
        needs_model=True,  # rebuilt with the settings a trained run's evaluation tuned
        proposes=True,
        explain=lambda _r, _i, matched: f"often with items in this history ({name}); {matched}",
    )


ENGINES: dict[str, Engine] = {}
"""Engine name -> entry, in the order the pickers list them and the evaluation judges them."""


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


def title(name: str) -> str:
    """How sentences name an engine (a name no longer registered: itself)."""
    return ENGINES[name].named if name in ENGINES else name


for _entry in (
    Engine(
        MODEL,
        "the two-tower model: user and item embeddings",
        _two_tower,
        title="the two-tower model",
        needs_model=True,
        indexed=True,
        proposes=True,
    ),
    Engine(
        SECOND_STAGE,
        "the second stage: LightGBM re-ranking the engines' candidates",
        lambda recommender, rows: recommender.second_stage(rows),
        title="the second stage",
        needs_model=True,
        needs_ranker=True,
        candidates_only=True,
        explain=lambda recommender, _i, matched: (
            f"ranked by the second stage over {', '.join(recommender.ranker.engines)}; {matched}"
        ),
    ),
    _neighbourhood("ease", "EASE: a closed-form item-item regression", tune_ease, rebuild_ease),
    _neighbourhood("item_knn", "item-kNN", tune_item_knn, rebuild_item_knn),
    Engine(
        PROFILE,
        "content-based: the user's stated skills and interests against the items'",
        lambda recommender, rows: recommender.content.scores(
            recommender.users.iloc[rows], recommender.history.matrix[rows]
        ),
        tune=tune_content,
        warm=False,
        fallback="popularity",
    ),
    Engine(
        "popularity",
        "popularity: the most interacted-with items",
        lambda recommender, rows: np.tile(recommender.popularity.astype(float), (len(rows), 1)),
        tune=tune_popularity,
        proposes=True,
        explain=lambda recommender, i, _m: (
            f"popular: {int(recommender.popularity[i])} interactions"
        ),
    ),
    Engine(
        "bpr",
        "BPR: matrix factorisation from pairwise preferences (RecBole's recipe)",
        None,
        tune=tune_bpr,
    ),
):
    register_engine(_entry)
