"""The yardsticks every market model is judged beside, by name: one registry
(``MARKET_BASELINES``) that the evaluation, the estimate and the pages read. Each entry says
what it predicts from what it may read (``Known``): the training rows' targets, the test rows'
past, the fitted linear and boosting models (``core.market.predictions``) or, on synthetic
data, the generator's truth. (``core.market.models.baselines`` holds seed 002's baseline
*models*, trained like any model.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.market.models import ModelSpec


def _class_from_sign(sign: np.ndarray, classes: int) -> np.ndarray:
    """+1 -> the last class (up / positive), -1 -> the first, 0 -> the middle (or up)."""
    if classes == 2:
        return (sign > 0).astype(int)
    return np.select([sign < 0, sign > 0], [0, classes - 1], classes // 2)


def oracle_classes(spec: ModelSpec, oracle: np.ndarray, threshold: float = 0.25) -> np.ndarray:
    if spec.targets == "relevance":
        return np.select([oracle < -threshold, oracle > threshold], [0, 2], 1)
    return _class_from_sign(np.sign(oracle), len(spec.target.class_names))


def oracle_column(spec: ModelSpec, h: int) -> str:
    return f"oracle_{'relevance' if spec.targets == 'relevance' else 'trend'}_{h}d"


@dataclass(frozen=True)
class Known:
    """What a baseline may read: the training rows' targets per horizon, the test rows'
    past (momentum, the trailing relevance) and the fitted models' predictions."""

    spec: ModelSpec
    dataset: pd.DataFrame
    test_rows: np.ndarray
    targets: dict[int, tuple[np.ndarray, np.ndarray]]
    momentum: np.ndarray
    trailing: Callable[[], pd.DataFrame | None]
    """The test rows' trailing relevance, computed on first use (None: not a relevance
    target)."""
    fitted: dict[tuple[str, int, str], np.ndarray]
    rows: int


Predicted = tuple[np.ndarray, Any] | None
"""A baseline's (scores, classes) of the test rows at one horizon; None where undefined."""


def _majority(known: Known, _name: str, h: int) -> Predicted:
    y_score, y_class = known.targets[h]
    return np.full(known.rows, y_score.mean()), np.bincount(y_class).argmax()


def _momentum(known: Known, _name: str, _h: int) -> Predicted:
    sign = np.sign(known.momentum)
    return sign, _class_from_sign(sign, len(known.spec.target.class_names))


def _fitted(known: Known, name: str, h: int) -> Predicted:
    return np.clip(known.fitted[name, h, "score"], -1, 1), known.fitted[name, h, "class"]


def _persistence(known: Known, _name: str, h: int) -> Predicted:
    trailing = known.trailing()
    if trailing is None:
        return None
    score = np.nan_to_num(trailing[f"trailing_relevance_{h}d"].to_numpy())
    return score, oracle_classes(known.spec, score)


def _oracle(known: Known, _name: str, h: int) -> Predicted:
    column = oracle_column(known.spec, h)
    if column not in known.dataset.columns:
        return None
    truth = known.dataset[column].to_numpy()[known.test_rows]
    return truth, oracle_classes(known.spec, truth)


BOOSTING_ROUNDS = 200
"""The boosting baseline's most rounds; it stops early on a validation split."""


def _linear(_seed: int) -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression, Ridge

    return Ridge(alpha=10.0), LogisticRegression(max_iter=500, C=0.1)


def _boosting(seed: int) -> tuple[Any, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return (
        HistGradientBoostingRegressor(max_iter=BOOSTING_ROUNDS, random_state=seed),
        HistGradientBoostingClassifier(max_iter=BOOSTING_ROUNDS, random_state=seed),
    )


@dataclass(frozen=True)
class Baseline:
    """A yardstick every market model is judged beside."""

    description: str
    predict: Callable[[Known, str, int], Predicted]
    """(what it may read, its name, horizon) -> its test scores and classes, or None."""
    estimators: Callable[[int], tuple[Any, Any]] | None = None
    """seed -> the unfitted (regressor, classifier) fitted on the training rows' features
    (``core.market.predictions.fit_baseline_models``); None: nothing to fit."""
    early_stopping: bool = False
    """Its fits may stop before their last round (an estimate scales its share of rounds)."""
    slow: bool = False
    """Fitting it takes longer than a quick model trains: left out of the demo's first start."""
    targets: tuple[str, ...] | None = None
    """The targets it is defined for; None: every target."""
    needs_oracle: bool = False
    """Defined only on generated data, which keeps the generator's truth."""
    bound: bool = False
    """A ceiling, not a rival: never the best baseline a model is judged against."""
    constant: bool = False
    """One score for every row: it ranks and trades nothing."""

    @property
    def fitted(self) -> bool:
        return self.estimators is not None

    def applies(self, targets: str, *, has_oracle: bool) -> bool:
        """Whether it is defined for a run of ``targets`` on data with or without an oracle."""
        return (self.targets is None or targets in self.targets) and (
            has_oracle or not self.needs_oracle
        )


MARKET_BASELINES: dict[str, Baseline] = {
    "majority": Baseline(
        "the training mean score and the most frequent class", _majority, constant=True
    ),
    "momentum": Baseline("the sign of the last 21 days' return", _momentum),
    "linear": Baseline("ridge and logistic regression on every feature", _fitted, _linear),
    "boosting": Baseline(
        "histogram gradient boosting on every feature",
        _fitted,
        _boosting,
        early_stopping=True,
        slow=True,
    ),
    "persistence": Baseline(
        "the trailing relevance, known on the row's date", _persistence, targets=("relevance",)
    ),
    "oracle": Baseline(
        "the generator's truth (synthetic data only)", _oracle, needs_oracle=True, bound=True
    ),
}
"""Baseline name -> how it predicts: the one registry of market baselines (the evaluation,
the estimate, the tries and the pages read its names and what each entry says)."""
FITTED = tuple(name for name, baseline in MARKET_BASELINES.items() if baseline.fitted)
"""The baselines fitted on the training rows' features (a walk-forward refits them)."""
BOUNDS = tuple(name for name, baseline in MARKET_BASELINES.items() if baseline.bound)
RIVALS = tuple(
    name
    for name, baseline in MARKET_BASELINES.items()
    if not baseline.bound and baseline.targets is None and not baseline.needs_oracle
)
"""The baselines every run can be judged against, whatever its target and data."""
HEDGE_RIVAL = "persistence"
"""The baseline whose hedge a co-movement report shows beside the model's."""
QUICKEST = next(name for name, baseline in MARKET_BASELINES.items() if baseline.constant)
"""The one baseline a sweep's trials and a rolling retrain are judged beside: the cheapest."""
QUICK = tuple(
    name
    for name, baseline in MARKET_BASELINES.items()
    if not baseline.slow and baseline.targets is None
)
"""Every baseline but the slow ones (and those defined for one target only): the demo's."""
