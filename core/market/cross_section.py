"""Cross-sectional learning, the way the field does it (Qlib's RobustZScoreNorm and
CSRankNorm): on a universe with a cross-section, what is traded is the order of the day's
tickers, so features and labels are put on the day's scale before a model sees them.

- Features: each stock feature robust-z-scored across the tickers of its own date,
  (x - median) / (1.4826 MAD), clipped to +/- ``CLIP``. It reads that date's rows only: no
  other date, no look-ahead, nothing fitted. Context features are one value per date for
  every ticker (news, policy, macro), so they keep their training-segment standardisation.
- Labels: the forward return's rank among the day's tickers with a complete window, as the
  centred uniform score ``2 (rank - 0.5) / n - 1`` in (-1, 1): the trend score every trend
  model's bounded head predicts. Qlib's CSRankNorm is the same rank scaled to unit variance
  (x 3.46 instead of x 2); the issue asked for normal scores, but the heads end in tanh, so
  a bounded score keeps every label reachable. 'up' is the upper half of the day, the
  3-class label its thirds. Dates with fewer than ``MIN_TICKERS`` labelled tickers have none.

``DataConfig.cross_sectional`` switches it: 'auto' (on where the median date has at least
``core.market.uses.MIN_CROSS_SECTION`` tickers), 'on' or 'off'.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.market.uses import MIN_CROSS_SECTION

CLIP = 3.0
"""Robust z-scores beyond this are clipped (Qlib's RobustZScoreNorm default)."""
MIN_TICKERS = 5
"""Fewest tickers with a forward return on a date for its cross-sectional labels."""
MAD_SCALE = 1.4826
"""Median absolute deviation x this estimates a normal distribution's standard deviation."""
THIRD = 1 / 3
"""The rank score's class cuts: down below -THIRD, up above +THIRD (equal thirds of the day)."""


def tickers_per_date(frame: pd.DataFrame) -> int:
    """The median number of tickers a date of ``frame`` holds (0 for an empty frame)."""
    if frame.empty:
        return 0
    return int(frame.groupby("date")["ticker"].nunique().median())


def is_cross_sectional(frame: pd.DataFrame, setting: str) -> bool:
    """Whether ``setting`` ('auto', 'on', 'off') turns cross-sectional learning on for the
    rows of ``frame``."""
    if setting == "auto":
        return tickers_per_date(frame) >= MIN_CROSS_SECTION
    return setting == "on"


def robust_zscores(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``columns`` of ``frame`` robust-z-scored across each date's rows, clipped to +/- CLIP
    (same index, float32). A column that does not vary on a date scores 0 there; NaN stays
    NaN. One date's block at a time: a 500-ticker x 10-year universe needs one float32
    copy of the columns, not the seven float64 ones a grouped transform makes."""
    values = frame[list(columns)].to_numpy(dtype=np.float32)
    dates = frame["date"].to_numpy()
    order = np.argsort(dates, kind="stable")
    starts = np.flatnonzero(np.r_[True, dates[order][1:] != dates[order][:-1]])
    scored = np.empty_like(values)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with no value on a date
        for rows in np.split(order, starts[1:]):
            scored[rows] = _day_scores(values[rows])
    return pd.DataFrame(scored, index=frame.index, columns=list(columns))


def _day_scores(block: np.ndarray) -> np.ndarray:
    """One date's rows (tickers x columns) on the day's robust scale."""
    median = np.nanmedian(block, axis=0)
    centred = block - median
    scale = np.nanmedian(np.abs(centred), axis=0) * MAD_SCALE
    spread = np.nanstd(block, axis=0)
    scale = np.where(scale > 1e-12, scale, spread)  # half the day at one value: use the std
    scores = np.where(scale > 1e-12, centred / scale, 0.0)
    return np.where(np.isnan(block), np.nan, np.clip(scores, -CLIP, CLIP))


def rank_scores(frame: pd.DataFrame, column: str) -> pd.Series:
    """The rank of ``column`` among each date's rows as ``2 (rank - 0.5) / n - 1``, NaN
    where the value is missing or the date has fewer than ``MIN_TICKERS`` values."""
    values = frame[column].astype(float)
    dates = frame["date"].to_numpy()
    rank = values.groupby(dates).rank(method="average")
    count = values.notna().groupby(dates).transform("sum")
    score = 2 * (rank - 0.5) / count - 1
    return score.where(count >= MIN_TICKERS)


def cross_sectional_labels(frame: pd.DataFrame, horizons: Sequence[int]) -> dict[str, Any]:
    """Trend labels on the day's scale for each horizon (``trend_hd``, ``up_hd``,
    ``class_hd``), from ``fwd_return_hd``: rows as ``frame``'s."""
    labels: dict[str, Any] = {}
    for h in horizons:
        score = rank_scores(frame, f"fwd_return_{h}d")
        known = score.notna()
        labels[f"trend_{h}d"] = score
        labels[f"up_{h}d"] = (score > 0).astype(float).where(known)
        thirds = np.select([score < -THIRD, score > THIRD], [0.0, 2.0], 1.0)
        labels[f"class_{h}d"] = pd.Series(thirds, index=frame.index).where(known)
    return labels
