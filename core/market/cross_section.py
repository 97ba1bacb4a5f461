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
    (same index). A column that does not vary on a date scores 0 there; NaN stays NaN."""
    values = frame[list(columns)].astype(float)
    by_date = values.groupby(frame["date"].to_numpy())
    median = by_date.transform("median")
    deviation = (values - median).abs()
    mad = deviation.groupby(frame["date"].to_numpy()).transform("median") * MAD_SCALE
    spread = by_date.transform("std", ddof=0)
    scale = mad.where(mad > 1e-12, spread)  # half the day at one value: fall back to std
    with np.errstate(invalid="ignore", divide="ignore"):
        scored = (values - median) / scale.where(scale > 1e-12)
    scored = scored.where(scale > 1e-12, 0.0).where(values.notna())
    return scored.clip(-CLIP, CLIP)


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
        thirds = np.select([score < -1 / 3, score > 1 / 3], [0.0, 2.0], 1.0)
        labels[f"class_{h}d"] = pd.Series(thirds, index=frame.index).where(known)
    return labels
