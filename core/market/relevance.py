"""Relevance labels: how a stock's forward returns co-move with the market context.

The context factor is one daily market-wide series,

    f_d = w . z_d,    z_d = (daily change of the cross-ticker mean of each context feature)
                            / (its standard deviation on training dates),

with w fitted on the training segment only, as a rank-1 reduced-rank ridge regression of the
tickers' standardised daily returns on z: the single direction of context change that explains
the most return variance across stocks, whether a stock loads on it positively or negatively
(so hedges do not cancel cyclicals out). Its sign is set so that it moves with the
equal-weight market. For a row at t and horizon h, over the window (t, t + h] with r the stock's
daily log returns,

    relevance_h = sum(r * f) / sqrt(sum(r ** 2) * sum(f ** 2))     in [-1, 1]

the realised (uncentred) correlation of the stock with the context factor: positive when the
stock moves with the context, negative when against it (a hedge), near zero when unrelated.
The class is negative (0) below -threshold, positive (2) above it, none (1) between.
Uncentred because a 5-day window cannot spare a degree of freedom for its own mean.

What it is for: sizing a hedge of a position against the context (``core.market.uses``). The
baseline every risk model starts from is persistence, ``trailing_relevance``: the same
correlation over the window (t - h, t] that ends on the row's date, known on that date.
The built dataset keeps the factor as ``context_factor`` (one value per date, known on it)
so the baseline reads the factor its labels were made with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.market.labels import forward_window

RELEVANCE_CLASS_NAMES = ["negative", "none", "positive"]
RIDGE_PENALTY = 0.05  # per training day, on standardised inputs


def relevance_columns(horizons: Sequence[int]) -> list[str]:
    return [f"{kind}_{h}d" for h in horizons for kind in ("relevance", "relevance_class")]


def _market_context_changes(dataset: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Daily change of the cross-ticker mean of each context feature (dates x features)."""
    market = dataset.groupby("date", sort=True)[columns].mean()
    return market.diff()


@dataclass
class ContextFactor:
    """The fitted weights that turn daily context changes into one factor value per day."""

    columns: list[str]
    scale: np.ndarray
    weights: np.ndarray

    @classmethod
    def fit(
        cls, dataset: pd.DataFrame, *, columns: list[str], train_end: pd.Timestamp
    ) -> ContextFactor:
        changes = _market_context_changes(dataset, columns)
        returns = dataset.pivot(index="date", columns="ticker", values="ret_1d").sort_index()
        train = changes.index <= train_end
        scale = changes[train].std(ddof=0).to_numpy()
        usable = np.isfinite(scale) & (scale > 1e-12)
        scale = np.where(usable, scale, 1.0)
        x = np.nan_to_num(changes[train].to_numpy() / scale) * usable  # days x features
        y = np.nan_to_num(returns[train].to_numpy())  # days x tickers
        y = (y - y.mean(axis=0)) / np.where(y.std(axis=0) > 0, y.std(axis=0), 1.0)
        penalty = RIDGE_PENALTY * len(y) * np.eye(x.shape[1])
        coefficients = np.linalg.solve(x.T @ x + penalty, x.T @ y)  # features x tickers
        # Rank-1 reduced-rank regression: the direction of context change whose fitted values
        # explain most of the stocks' returns, whichever sign each stock loads with.
        _, _, vt = np.linalg.svd(x @ coefficients, full_matrices=False)
        weights = coefficients @ vt[0] * usable
        if (x @ weights) @ y.mean(axis=1) < 0:  # orient with the equal-weight market
            weights = -weights
        return cls(list(columns), scale, weights)

    def values(self, dataset: pd.DataFrame) -> pd.Series:
        """The factor on each date of ``dataset`` (0 where no context changed)."""
        changes = _market_context_changes(dataset, self.columns)
        factor = np.nan_to_num(changes.to_numpy() / self.scale) @ self.weights
        return pd.Series(factor, index=changes.index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
        }


def relevance_labels(
    dataset: pd.DataFrame,
    *,
    columns: list[str],
    train_end: pd.Timestamp,
    horizons: Sequence[int],
    threshold: float,
    factor: pd.Series | None = None,
) -> pd.DataFrame:
    """Relevance and its class for each row of ``dataset`` (same order), NaN where undefined.

    ``dataset`` holds date, ticker, ``ret_1d`` and the context feature ``columns``; the
    factor (by date) is fitted on rows dated on or before ``train_end`` unless given.
    """
    if factor is None:
        factor = ContextFactor.fit(dataset, columns=columns, train_end=train_end).values(dataset)
    out = pd.DataFrame(index=dataset.index, columns=relevance_columns(horizons), dtype=float)
    for _, rows in dataset.groupby("ticker", sort=False):
        rows = rows.sort_values("date")
        dates = rows["date"].to_numpy(dtype="datetime64[ns]")
        r = rows["ret_1d"].to_numpy(dtype=float)
        f = factor.reindex(rows["date"]).to_numpy()
        sums = {name: np.cumsum(x) for name, x in (("rf", r * f), ("rr", r * r), ("ff", f * f))}
        for h in horizons:
            start, end, valid = forward_window(dates, h)
            window = {name: c[end] - c[start] for name, c in sums.items()}
            denominator = np.sqrt(window["rr"] * window["ff"])
            defined = valid & (denominator > 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                score = np.where(defined, window["rf"] / denominator, np.nan)
            label = np.select([score < -threshold, score > threshold], [0.0, 2.0], 1.0)
            out.loc[rows.index, f"relevance_{h}d"] = score
            out.loc[rows.index, f"relevance_class_{h}d"] = np.where(defined, label, np.nan)
    return out


def trailing_relevance(
    dataset: pd.DataFrame, factor: pd.Series, horizons: Sequence[int]
) -> pd.DataFrame:
    """The persistence forecast of relevance: for a row at t, the realised correlation of the
    stock with the context factor over the window (t - h, t] that ends on t, by the same
    formula as the label (``relevance_{h}d`` reads (t, t + h]). NaN until a ticker's history
    covers a whole window. Columns ``trailing_relevance_{h}d``, rows as ``dataset``'s."""
    out = pd.DataFrame(
        index=dataset.index, columns=[f"trailing_relevance_{h}d" for h in horizons], dtype=float
    )
    for _, rows in dataset.groupby("ticker", sort=False):
        rows = rows.sort_values("date")
        dates = rows["date"].to_numpy(dtype="datetime64[ns]")
        r = rows["ret_1d"].to_numpy(dtype=float)
        f = factor.reindex(rows["date"]).to_numpy(dtype=float)
        sums = {
            name: np.concatenate([[0.0], np.cumsum(np.nan_to_num(x))])
            for name, x in (("rf", r * f), ("rr", r * r), ("ff", f * f))
        }
        for h in horizons:
            back = dates - np.timedelta64(h, "D")
            start = np.searchsorted(dates, back, side="right")  # first row dated after t - h
            end = np.arange(len(dates)) + 1  # through the row itself
            window = {name: c[end] - c[start] for name, c in sums.items()}
            denominator = np.sqrt(window["rr"] * window["ff"])
            defined = (back >= dates[0]) & (denominator > 0) if len(dates) else denominator > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                score = np.where(defined, window["rf"] / denominator, np.nan)
            out.loc[rows.index, f"trailing_relevance_{h}d"] = score
    return out
