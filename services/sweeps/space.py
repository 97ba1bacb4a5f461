"""What a sweep searches: dimensions over the numeric and choice fields of a model's config
dataclasses (dotted paths prefixed ``model.`` or ``training.``), the defaults the form and
the CLI offer, the YAML form (``parse_space``), and a trial's configs from its values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.config import Config, flat_fields, flatten, from_flat
from services.jobs.kinds import dataset_fixed_fields
from services.registry import trainable

if TYPE_CHECKING:
    pass


NOT_SEARCHED = ("seed", "epochs", "scheduler.total_epochs")
"""Fields every trial shares with the base config: the same data, seed and budget."""


SUGGESTED = (
    "training.optimizer.base_learning_rate",
    "training.optimizer.weight_decay",
    "training.batch_size",
    "model.dropout",
)
"""Dimensions the form and the CLI start from, where the model has them."""


class SweepError(ValueError):
    """A sweep cannot be started as asked; the message names the field."""


@dataclass(frozen=True)
class Dimension:
    """One searched field: a numeric range (``low``..``high``, on a log scale when ``log``)
    or a list of ``choices``."""

    path: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}

    def distribution(self) -> Any:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.choices is not None:
            return CategoricalDistribution(list(self.choices))
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        return isinstance(value, int | float) and self.low <= value <= self.high


def searchable_fields(model_name: str, recipe: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Dotted path -> the config field, for every numeric or choice field a sweep may search
    (not the seed and budget every trial shares, nor the fields the dataset fixes)."""
    spec = trainable(model_name)
    fixed = {f"model.{p}" for p in dataset_fixed_fields(model_name, dict(recipe or {}))}
    found = {}
    for prefix, cls in (("model", spec.config_class), ("training", spec.training_config_class)):
        for item in flat_fields(cls):
            path = f"{prefix}.{item.path}"
            numeric = isinstance(item.default, int | float) and not isinstance(item.default, bool)
            if item.path in NOT_SEARCHED or path in fixed or not (numeric or item.choices):
                continue
            found[path] = item
    return found


def default_dimension(path: str, item: Any) -> Dimension:
    """A range around a field's default: a decade either side on a log scale for rates and
    decays, half to double otherwise (up to 0.9 for fractions); every choice."""
    if item.choices:
        return Dimension(path, choices=tuple(item.choices))
    value, integer = item.default, isinstance(item.default, int)
    if integer:
        return Dimension(path, max(1, value // 2), max(2, value * 2), integer=True)
    if value > 0 and any(k in path for k in ("learning_rate", "weight_decay", "lr_")):
        return Dimension(path, value / 10, value * 10, log=True)
    if 0 < value < 1:
        return Dimension(path, value / 2, min(value * 2, 0.9))
    if value <= 0:
        return Dimension(path, 0.0, 0.5)
    return Dimension(path, value / 2, value * 2)


def suggested_space(model_name: str, recipe: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The space a sweep starts from: ``SUGGESTED`` fields the model has, default ranges."""
    fields = searchable_fields(model_name, recipe)
    return {p: default_dimension(p, fields[p]).to_dict() for p in SUGGESTED if p in fields}


def parse_space(
    model_name: str, raw: Mapping[str, Any], recipe: Mapping[str, Any] | None = None
) -> list[Dimension]:
    """Check a space given as {path: {low, high[, log]} | {choices: [...]}} (the YAML file of
    ``trendlab sweep --space``); SweepError names the first wrong path."""
    if not isinstance(raw, Mapping) or not raw:
        raise SweepError("The search space is empty: give at least one field to search.")
    fields = searchable_fields(model_name, recipe)
    dimensions = []
    for path, bounds in raw.items():
        if path not in fields:
            near = ", ".join(sorted(fields))
            raise SweepError(f"{path}: not a field a sweep of {model_name} can search ({near}).")
        item = fields[path]
        if not isinstance(bounds, Mapping):
            raise SweepError(f"{path}: give {{low: ..., high: ...}} or {{choices: [...]}}.")
        unknown = set(bounds) - {"low", "high", "log", "choices"}
        if unknown:
            raise SweepError(f"{path}: unknown key {sorted(unknown)[0]!r}.")
        if "choices" in bounds:
            choices = bounds["choices"]
            if not isinstance(choices, list | tuple) or not choices:
                raise SweepError(f"{path}: choices must be a non-empty list.")
            allowed = item.choices
            wrong = [c for c in choices if (c not in allowed if allowed else not _number(c))]
            if wrong:
                raise SweepError(f"{path}: {wrong[0]!r} is not an allowed value.")
            dimensions.append(Dimension(path, choices=tuple(choices)))
            continue
        if item.choices:
            raise SweepError(f"{path}: a choice field; give choices: [...].")
        low, high, log = bounds.get("low"), bounds.get("high"), bool(bounds.get("log", False))
        if not (_number(low) and _number(high)) or not low < high:
            raise SweepError(f"{path}: low and high must be numbers with low < high.")
        if log and low <= 0:
            raise SweepError(f"{path}: a log scale needs low > 0.")
        integer = isinstance(item.default, int)
        if integer and not (float(low).is_integer() and float(high).is_integer()):
            raise SweepError(f"{path}: an integer field needs whole-number bounds.")
        dimensions.append(Dimension(path, low, high, log, integer))
    return dimensions


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def trial_configs(
    spec: Any, base: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[Config, Config]:
    """The model and training configs of a trial: the base with ``params`` laid over it."""
    values: dict[str, dict[str, Any]] = {"model": {}, "training": {}}
    for path, value in params.items():
        part, _, rest = path.partition(".")
        values[part][rest] = value
    model = from_flat(spec.config_class, {**flatten(base["model"]), **values["model"]})
    training = from_flat(
        spec.training_config_class, {**flatten(base["training"]), **values["training"]}
    )
    return model, training


def dimension_bounds(bounds: Mapping[str, Any]) -> dict[str, Any]:
    if "choices" in bounds:
        return {"choices": tuple(bounds["choices"])}
    integer = all(isinstance(bounds[k], int) for k in ("low", "high"))
    return {
        "low": bounds["low"],
        "high": bounds["high"],
        "log": bool(bounds.get("log")),
        "integer": integer,
    }
