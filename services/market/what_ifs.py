"""The scales a what-if is read on (the Predict page): each feature's slider drawn from the
run's training rows, the spread of the model's stored test scores that a change of score is
measured in, and the rule that says what a predicted class means beside its score."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.cross_section import THIRD
from core.market.models import RELEVANCE, THREE_CLASS, UP_DOWN, Target, class_readout
from core.market.predict import Predictor, feature_ranges
from core.market.training import training_rows
from storage.repository import list_artifacts, session_scope

STEPS = 100
"""A slider moves in at least this many steps over its range (and fewer than ten times as
many): the step is the power of ten at or below the range / STEPS."""


@dataclass(frozen=True)
class SliderScale:
    """How one feature's slider is drawn, from the feature's values on the training rows."""

    low: float
    """The lower end: the 1st percentile, widened a little (``feature_ranges``), never below 0
    for a feature the training rows never hold negative."""
    high: float
    """The upper end: the 99th percentile, widened a little, never above 1 for a share (a
    feature the training rows hold within 0..1)."""
    step: float
    """The slider's step: 1 for a count, else a power of ten giving STEPS or more steps."""
    format: str
    """The printf format the value is shown with: ``%d`` for a count, else as many decimals
    as the step has."""
    count: bool
    """Every training value is a whole number >= 0 (an event count): the slider moves in
    whole numbers."""

    def around(self, value: float) -> tuple[float, float, float]:
        """(low, high, value) for a slider that starts at ``value`` (NaN: the middle): the range
        widened to hold it, whole numbers for a count."""
        value = (self.low + self.high) / 2 if math.isnan(value) else value
        low, high = min(self.low, value), max(self.high, value)
        if self.count:
            return math.floor(low), math.ceil(high), round(value)
        return low, high, value


def run_training_rows(frame: pd.DataFrame, predictor: Predictor) -> pd.DataFrame:
    """The rows of the run's dataset ``frame`` it trained on."""
    data = DataConfig.from_dict(predictor.meta.get("data_config", {}), partial=True)
    labels = [predictor.spec.target.columns(h)[0] for h in predictor.horizons]
    return training_rows(frame, data, labels)


def slider_scales(train: pd.DataFrame, features: list[str]) -> dict[str, SliderScale]:
    """A slider scale per feature from its values on the training rows ``train``."""
    ranges = feature_ranges(train, features)
    scales = {}
    for feature in features:
        low, high = ranges[feature]
        values = train[feature].dropna() if feature in train.columns else pd.Series(dtype=float)
        values = values.to_numpy(dtype=float)
        observed = len(values) > 0
        non_negative = observed and values.min() >= 0
        if non_negative:
            low = max(low, 0.0)
        if non_negative and values.max() <= 1:
            high = min(high, 1.0)
        if non_negative and np.all(values == np.round(values)):
            scales[feature] = SliderScale(
                float(math.floor(low)), float(max(math.ceil(high), 1)), 1, "%d", True
            )
            continue
        exponent = math.floor(math.log10(max(high - low, 1e-9) / STEPS))
        step = 10.0**exponent
        decimals = max(0, -exponent)
        scales[feature] = SliderScale(
            round(math.floor(low / step) * step, decimals),
            round(math.ceil(high / step) * step, decimals),
            round(step, decimals),
            f"%.{decimals}f",
            False,
        )
    return scales


@dataclass(frozen=True)
class ScoreSpread:
    """The spread of the model's scores on its test rows at one horizon."""

    horizon: int
    """Days ahead."""
    std: float
    """The standard deviation of the test scores (n - 1 in the denominator)."""
    rows: int
    """The test rows with a score."""

    def sentence(self, change: float) -> str:
        """``change`` of the score in units of this spread, in words."""
        days = f"{self.horizon}-day"
        if change == 0:
            return (
                f"No change. A change is measured against σ = {self.std:.4f}, the standard "
                f"deviation of this model's {days} test scores ({self.rows:,} rows)."
            )
        if self.std == 0:
            return (
                f"{change:+.4f}, with no scale: this model's {days} test scores do not vary "
                f"({self.rows:,} rows)."
            )
        return (
            f"{change:+.4f} = {change / self.std:+.2f} standard deviations of this model's "
            f"{days} test scores (σ = {self.std:.4f}, {self.rows:,} rows)."
        )


def score_spreads(*, engine: Engine, run_id: int, horizons: list[int]) -> dict[int, ScoreSpread]:
    """The spread of the model's scores per horizon in the test predictions stored with the
    run's evaluation (``services.market.evaluation.save_evaluation``); a horizon is missing
    when the run has no stored test predictions or they hold no score for it."""
    with session_scope(engine) as session:
        stored = list_artifacts(session=session, run_id=run_id, kind="predictions")
    if not stored or not Path(stored[-1].path).is_file():
        return {}
    path = Path(stored[-1].path)
    present = set(pq.read_schema(path).names)
    columns = [f"score_{h}d" for h in horizons if f"score_{h}d" in present]
    scores = pd.read_parquet(path, columns=columns)
    spreads = {}
    for h in horizons:
        column = f"score_{h}d"
        values = scores[column].dropna() if column in scores.columns else pd.Series(dtype=float)
        if len(values) >= 2:
            spreads[h] = ScoreSpread(h, float(values.std()), len(values))
    return spreads


def _label_cuts(target: Target, data: DataConfig, cross_sectional: bool) -> tuple[str, list[float]]:
    """What the class labels of ``target`` cut (the quantity its score forecasts) and where
    (``core.market.labels``, ``core.market.relevance``, ``core.market.cross_section``)."""
    if target == RELEVANCE:
        quantity = "the stock's realised correlation with the context factor over the horizon"
        return quantity, [-data.relevance_threshold, data.relevance_threshold]
    if cross_sectional:
        quantity = (
            "the rank score (-1 to 1) of the horizon's forward return among its date's tickers"
        )
        thirds = [-THIRD, THIRD]
        return quantity, thirds if target == THREE_CLASS else [0.0]
    quantity = "the trend tanh(forward return / its own volatility) over the horizon"
    edge = math.tanh(data.neutral_z)
    return quantity, [-edge, edge] if target == THREE_CLASS else [0.0]


def _bands(names: tuple[str, ...], cuts: list[float]) -> str:
    """'a' below c0, 'b' from c0 to c1, ... 'z' above the last cut."""
    parts = [f"'{names[0]}' below {cuts[0]:+.3f}"]
    parts += [
        f"'{name}' from {low:+.3f} to {high:+.3f}"
        for name, low, high in zip(names[1:-1], cuts[:-1], cuts[1:], strict=True)
    ]
    parts.append(f"'{names[-1]}' above {cuts[-1]:+.3f}")
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def class_rule(predictor: Predictor) -> str:
    """One sentence on how the predicted class relates to the score: the class head's own
    argmax, and what each class's label meant in training (from the run's data config)."""
    spec = predictor.spec
    names = spec.target.class_names
    data = DataConfig.from_dict(predictor.meta.get("data_config", {}), partial=True)
    if spec.target not in (RELEVANCE, THREE_CLASS, UP_DOWN):
        return (
            f"The class is the most probable of {', '.join(names)} from the model's class "
            "head, not a cut of the score."
        )
    quantity, cuts = _label_cuts(spec.target, data, predictor.cross_sectional)
    bands = _bands(names, cuts)
    if spec.readout is class_readout:
        return (
            f"The class is the most probable class of the model's class head, and the score is "
            f"P('{names[-1]}') − P('{names[0]}') from that same head, so a score near 0 can sit "
            f"beside any class; the head learned labels that cut {quantity} into {bands}."
        )
    return (
        "The class is the most probable class of the model's own class head, not a cut of the "
        f"score: that head learned labels that cut {quantity} into {bands}, while the score "
        "head forecasts that quantity itself; the two heads are trained apart, so a score above "
        f"{cuts[0]:+.3f} can still come with '{names[0]}'."
    )
