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
    trailing: pd.DataFrame | None
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
    if known.trailing is None:
        return None
    score = np.nan_to_num(known.trailing[f"trailing_relevance_{h}d"].to_numpy())
    return score, oracle_classes(known.spec, score)


def _oracle(known: Known, _name: str, h: int) -> Predicted:
    column = oracle_column(known.spec, h)
    if column not in known.dataset.columns:
        return None
    truth = known.dataset[column].to_numpy()[known.test_rows]
    return truth, oracle_classes(known.spec, truth)


@dataclass(frozen=True)
class Baseline:
    """A yardstick every market model is judged beside."""

    description: str
    predict: Callable[[Known, str, int], Predicted]
    """(what it may read, its name, horizon) -> its test scores and classes, or None."""
    fitted: bool = False
    """Fitted on the training rows' features (the linear and boosting models)."""


MARKET_BASELINES: dict[str, Baseline] = {
    "majority": Baseline("the training mean score and the most frequent class", _majority),
    "momentum": Baseline("the sign of the last 21 days' return", _momentum),
    "linear": Baseline("ridge and logistic regression on every feature", _fitted, fitted=True),
    "boosting": Baseline("histogram gradient boosting on every feature", _fitted, fitted=True),
    "persistence": Baseline("the trailing relevance, known on the row's date", _persistence),
    "oracle": Baseline("the generator's truth (synthetic data only)", _oracle),
}
"""Baseline name -> how it predicts: the one registry of market baselines (the evaluation,
the estimate and the pages read its names)."""
FITTED = tuple(name for name, baseline in MARKET_BASELINES.items() if baseline.fitted)
