"""Labels over the forward window only: trend score, up/down direction and 3-class trend.

For a row at date t and a horizon of h calendar days the window is the trading days in
(t, t + h]. With r the daily log returns inside it,

    z_h     = sum(r) / sqrt(sum(r ** 2))        (forward return in units of its own volatility)
    trend_h = tanh(z_h)                           in [-1, 1]
    up_h    = 1 if sum(r) > 0 else 0
    class_h = down (0) if z_h < -neutral_z, up (2) if z_h > neutral_z, else neutral (1)

so a label reads the close at t and the rows in (t, t + h], nothing before and nothing after.
``neutral_z`` defaults to 0.4307, the point that cuts a standard normal into equal thirds.
Rows whose window runs past the last date have no label (NaN) and are never trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

NEUTRAL_Z = 0.4307
CLASS_NAMES = ["down", "neutral", "up"]


def label_columns(horizons: Sequence[int]) -> list[str]:
    return [f"{kind}_{h}d" for h in horizons for kind in ("fwd_return", "trend", "up", "class")]


def forward_window(
    dates: np.ndarray, horizon_days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row i of one ticker: (i, the last row dated <= t_i + h, window complete?).

    A sum over the window (t, t + h] of a per-row quantity x is then
    ``cumsum(x)[end] - cumsum(x)[start]``.
    """
    n = len(dates)
    target = dates + np.timedelta64(horizon_days, "D")
    end = np.searchsorted(dates, target, side="right") - 1  # last trading day <= t + h
    valid = (target <= dates[-1]) & (end > np.arange(n)) if n else np.zeros(0, bool)
    return np.arange(n), end, valid


def forward_labels(
    dates: np.ndarray, close: np.ndarray, horizon_days: int, neutral_z: float = NEUTRAL_Z
) -> dict[str, np.ndarray]:
    """Labels for one ticker; ``dates`` sorted datetime64[ns], ``close`` positive."""
    log_close = np.log(close.astype(float))
    returns = np.diff(log_close, prepend=log_close[0])  # returns[i] = r from i - 1 to i
    cum_sq = np.cumsum(returns**2)
    start, end, valid = forward_window(dates, horizon_days)
    fwd = log_close[end] - log_close[start]
    sum_sq = cum_sq[end] - cum_sq[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(sum_sq > 0, fwd / np.sqrt(sum_sq), 0.0)
    labels = {
        f"fwd_return_{horizon_days}d": fwd,
        f"trend_{horizon_days}d": np.tanh(z),
        f"up_{horizon_days}d": (fwd > 0).astype(float),
        f"class_{horizon_days}d": np.select([z < -neutral_z, z > neutral_z], [0.0, 2.0], 1.0),
    }
    return {name: np.where(valid, values, np.nan) for name, values in labels.items()}


def trend_labels(
    prices: pd.DataFrame, horizons: Sequence[int], neutral_z: float = NEUTRAL_Z
) -> pd.DataFrame:
    """Labels for every ticker of a long frame with date, ticker and close."""
    parts = []
    ordered = prices.sort_values(["ticker", "date"], kind="stable")
    for ticker, group in ordered.groupby("ticker", sort=True):
        dates = group["date"].to_numpy(dtype="datetime64[ns]")
        close = group["close"].to_numpy()
        columns: dict[str, np.ndarray] = {}
        for h in horizons:
            columns.update(forward_labels(dates, close, h, neutral_z))
        parts.append(pd.DataFrame({"date": group["date"].to_numpy(), "ticker": ticker, **columns}))
    frame = pd.concat(parts, ignore_index=True)
    return frame[["date", "ticker", *label_columns(horizons)]]


LABEL_MEANINGS = {
    "fwd_return": "the log return from the close on the row's date to the last close within "
    "the next {h} days",
    "trend": "the forward {h}-day return in units of its own daily volatility, squashed by "
    "tanh into [-1, 1] (on a cross-section of at least {n} tickers a day, models learn the "
    "return's rank among the day's tickers instead, on the same [-1, 1] scale)",
    "up": "1 when the forward {h}-day return is positive, else 0",
    "class": "down (0), neutral (1) or up (2): the volatility-scaled forward {h}-day return "
    "below -{z}, between, or above +{z} (equal thirds of a standard normal)",
    "relevance": "the realised correlation of the stock's next-{h}-day daily returns with "
    "the context factor (the market-wide direction of context change fitted on the training "
    "dates), in [-1, 1]: positive moves with the context, negative hedges it",
    "relevance_class": "negative (0), none (1) or positive (2): relevance below -{t}, "
    "between, or above +{t}",
    "trailing_relevance": "the same correlation over the {h} days up to the row's date "
    "(known on it: the persistence baseline)",
}
"""What each label column means, by its name without the horizon suffix."""


def label_meaning(column: str, *, relevance_threshold: float, min_cross_section: int) -> str | None:
    """One sentence for a label column such as ``trend_7d`` (None: not a label)."""
    kind, _, suffix = column.rpartition("_")
    if kind not in LABEL_MEANINGS or not suffix.endswith("d") or not suffix[:-1].isdigit():
        return None
    return LABEL_MEANINGS[kind].format(
        h=int(suffix[:-1]), z=NEUTRAL_Z, t=relevance_threshold, n=min_cross_section
    )
