"""Time-ordered splits with a purge gap, walk-forward folds, and a train-only standardiser.

A purge of at least the longest label horizon between segments means no training label
window (t, t + h] reaches a validation or test date.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


class SplitError(ValueError):
    """The data cannot be split as asked (too few dates, an empty segment)."""


@dataclass(frozen=True)
class TimeSplit:
    """Boolean row masks over the frame that was split, plus the segment boundaries."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    bounds: dict[str, tuple[pd.Timestamp, pd.Timestamp]]


def training_end(dates: pd.Series, train_fraction: float) -> pd.Timestamp:
    """The last date of the training segment: the ``train_fraction`` quantile of the dates."""
    unique = np.unique(pd.to_datetime(dates).to_numpy())
    if len(unique) == 0:
        raise SplitError("There are no dates to split.")
    return pd.Timestamp(unique[max(int(len(unique) * train_fraction) - 1, 0)])


def time_split(
    dates: pd.Series,
    *,
    train_fraction: float,
    val_fraction: float,
    purge_days: int,
) -> TimeSplit:
    """Split rows by date: train, then validation, then test, each gap >= ``purge_days``.

    Fractions are of the distinct dates; the purge removes dates after each boundary.
    """
    values = pd.to_datetime(dates).to_numpy()
    unique = np.unique(values)
    if len(unique) < 3:
        raise SplitError(f"Only {len(unique)} distinct dates; a split needs at least 3.")
    train_end = training_end(dates, train_fraction).to_datetime64()
    val_end = unique[max(int(len(unique) * (train_fraction + val_fraction)) - 1, 0)]
    gap = np.timedelta64(purge_days, "D")
    train = values <= train_end
    val = (values > train_end + gap) & (values <= val_end)
    test = values > val_end + gap
    for name, mask in (("training", train), ("validation", val), ("test", test)):
        if not mask.any():
            raise SplitError(
                f"The {name} segment is empty: {len(unique)} dates from "
                f"{pd.Timestamp(unique[0]).date()} to {pd.Timestamp(unique[-1]).date()} are too "
                f"few for these fractions with a {purge_days}-day purge."
            )
    bounds = {
        name: (pd.Timestamp(values[mask].min()), pd.Timestamp(values[mask].max()))
        for name, mask in (("train", train), ("val", val), ("test", test))
    }
    return TimeSplit(train=train, val=val, test=test, bounds=bounds)


def walk_forward_folds(
    dates: pd.Series, *, folds: int, purge_days: int, min_train_fraction: float = 0.4
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds: train on everything up to a cut, test on the next block.

    The first ``min_train_fraction`` of the dates is always training; the rest is cut into
    ``folds`` consecutive test blocks, each starting ``purge_days`` after its training end.
    """
    values = pd.to_datetime(dates).to_numpy()
    unique = np.unique(values)
    start = int(len(unique) * min_train_fraction)
    edges = np.linspace(start, len(unique), folds + 1).astype(int)
    gap = np.timedelta64(purge_days, "D")
    result = []
    for lo, hi in itertools.pairwise(edges):
        train_end = unique[lo - 1]
        test = (values > train_end + gap) & (values <= unique[hi - 1])
        if test.any():
            result.append((values <= train_end, test))
    if not result:
        raise SplitError("No walk-forward fold has test rows; use fewer folds or more dates.")
    return result


@dataclass
class Standardizer:
    """Per-column mean and standard deviation, fit on training rows only (NaN ignored)."""

    columns: list[str]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str]) -> Standardizer:
        return cls.fit_values(frame[columns].to_numpy(dtype=float), columns)

    @classmethod
    def fit_values(cls, values: np.ndarray, columns: list[str]) -> Standardizer:
        """Fit on a (rows, columns) array; float32 input is summed in float64."""
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are handled below
            mean = np.nanmean(values, axis=0, dtype=np.float64)
            std = np.nanstd(values, axis=0, dtype=np.float64)
        # A constant or all-missing column passes through centred, never divided by zero.
        std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        return cls(list(columns), mean, std)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return (frame[self.columns].to_numpy(dtype=float) - self.mean) / self.std

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Standardise a (rows, columns) array in place, in its own precision."""
        values -= self.mean.astype(values.dtype)
        values /= self.std.astype(values.dtype)
        return values

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Standardizer:
        return cls(list(data["columns"]), np.asarray(data["mean"]), np.asarray(data["std"]))
