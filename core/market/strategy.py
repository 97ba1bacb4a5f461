"""Trading figures from a predictor's scores that mean what they say.

Each test date the scores across tickers set a portfolio held for the next day (its return is
each ticker's ``next_return``). Three portfolios:

- ``market_neutral``: the scores ranked (or taken as they are) and demeaned across the tickers
  of the day, scaled so the long side holds 0.5 and the short side 0.5 of capital (gross 1,
  net 0). A constant predictor holds nothing and earns exactly 0; a predictor that says "up"
  for everything no longer earns the market's rise.
- ``long_only``: equal weight in the tickers scored above the day's mean, reported as the
  *excess* over an equal-weight holding of the same tickers; every ticker is held equally
  when the scores do not differ, so a constant predictor shows exactly 0.
- ``topk``: Qlib's TopkDropout, long ``topk`` tickers, at most ``n_drop`` swapped per day
  (the held ones now ranked lowest out, the best not held in); also reported as excess.
- ``time_series``: each ticker long or short in proportion to its own score less the mean
  score of the dates before (clipped to [-1, 1], divided by the day's tickers: gross at most
  1; a constant predictor holds nothing), not demeaned across the day's tickers. It
  earns when the scores get each ticker's direction right over time, which is what a pooled
  correlation with the target measures; with too few tickers for a cross-section
  (``core.market.verdict``) it is the strategy that trades what the headline judges.

The first three trade the order of tickers on a date, what a rank IC measures.

Each day's targets are held for the dates the forecast's horizon spans (``holding:
horizon``, overlapping tranches, the way a multi-day forecast is traded), unless ``holding``
is 'daily'. Costs are ``cost_bps`` basis points per unit of turnover, turnover being the sum
over tickers of |weight today - weight yesterday| (for the excess portfolios, of the weights
beyond the benchmark's: what the active bets trade). Net return = gross - cost x turnover,
day by day, so doubling the cost lowers the net return by exactly the turnover times the
added cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.config import Config
from core.market.uncertainty import (
    block_length,
    bootstrap_draws,
    enough_blocks,
    interval,
    label_window,
)

YEAR = 252
KINDS = ("market_neutral", "long_only", "topk", "time_series")
CROSS_SECTIONAL_KINDS = ("market_neutral", "long_only", "topk")


@dataclass
class StrategyConfig(Config):
    cost_bps: float = 10.0
    """Trading cost in basis points of the value traded (10 bp = 0.1 % per unit of
    turnover), charged every day on that day's turnover."""
    weighting: str = "rank"
    """Market-neutral weights from each day's ranks ('rank', robust to a score's scale) or
    from the scores themselves ('score'), demeaned across the day's tickers."""
    topk: int = 0
    """TopkDropout (Qlib): hold this many tickers; 0 leaves the option off."""
    n_drop: int = 1
    """TopkDropout: at most this many held tickers are swapped each day."""
    holding: Literal["horizon", "daily"] = "horizon"
    """'horizon': each day's target portfolio is held for the dates the forecast's horizon
    spans, as overlapping tranches (the book is the mean of the last k days' targets, k the
    label window in dates: 5 for 7 days, 21 for 30), so a 30-day forecast is not rebuilt
    from scratch every day; 'daily': the whole book follows each day's scores. TopkDropout
    keeps its own turnover limit either way."""

    def validate(self) -> None:
        self.require("cost_bps", 0 <= self.cost_bps <= 1000, "0 to 1000 basis points")
        self.require("weighting", self.weighting in ("rank", "score"), "'rank' or 'score'")
        self.require("topk", self.topk >= 0, "0 (off) or a number of tickers")
        self.require("n_drop", self.n_drop >= 1, "at least 1")
        self.require("holding", self.holding in ("horizon", "daily"), "'horizon' or 'daily'")

    @property
    def cost(self) -> float:
        return self.cost_bps / 1e4


def _panels(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores, next returns), dates x tickers; NaN where a ticker has no row that day."""
    scores = frame.pivot(index="date", columns="ticker", values="score").sort_index()
    returns = frame.pivot(index="date", columns="ticker", values="next_return")
    return scores, returns.reindex_like(scores).fillna(0.0)


def equal_weights(scores: pd.DataFrame) -> pd.DataFrame:
    """The benchmark: every ticker with a row that day, equally weighted."""
    present = scores.notna().astype(float)
    return present.div(present.sum(axis=1).replace(0, 1), axis=0)


def market_neutral_weights(scores: pd.DataFrame, weighting: str = "rank") -> pd.DataFrame:
    """Demeaned ranks (or scores) across each day's tickers, scaled to gross 1; 0 on days
    whose scores do not differ."""
    values = scores.rank(axis=1) if weighting == "rank" else scores
    centred = values.sub(values.mean(axis=1), axis=0)
    centred = centred.where(centred.abs() > 1e-12, 0.0)
    gross = centred.abs().sum(axis=1)
    return centred.div(gross.where(gross > 0, 1.0), axis=0).fillna(0.0)


def time_series_weights(scores: pd.DataFrame) -> pd.DataFrame:
    """Each ticker's score less the mean score of the dates before (what a pooled correlation
    centres on, known at the time), clipped to [-1, 1] and divided by the day's tickers:
    gross at most 1. A constant predictor holds nothing, and nothing is held on the first
    date."""
    present = scores.notna().sum(axis=1).replace(0, 1)
    earlier = scores.mean(axis=1).expanding().mean().shift(1)
    centred = scores.sub(earlier, axis=0)
    centred = centred.where(centred.abs() > 1e-12, 0.0)
    return centred.clip(-1.0, 1.0).div(present, axis=0).fillna(0.0)


def long_only_weights(scores: pd.DataFrame) -> pd.DataFrame:
    """Equal weight in the tickers above the day's mean score; every ticker when none is."""
    above = scores.sub(scores.mean(axis=1), axis=0) > 1e-12
    held = above.where(above.any(axis=1), scores.notna(), axis=0).astype(float)
    return held.div(held.sum(axis=1).replace(0, 1), axis=0)


def topk_dropout_weights(scores: pd.DataFrame, topk: int, n_drop: int) -> pd.DataFrame:
    """Qlib's TopkDropout: each day the ``n_drop`` (plus any free slots) best tickers not held
    join the held ones; of that pool, the held tickers ranked in its bottom ``n_drop`` are
    sold, as many of the new ones as slots free bought. Equal weights 1 / k."""
    weights = pd.DataFrame(0.0, index=scores.index, columns=scores.columns)
    held: list[Any] = []
    for date, row in scores.iterrows():
        row = row.dropna()
        held = [t for t in held if t in row.index]
        k = min(topk, len(row))
        ranked = row.sort_values(ascending=False, kind="stable")
        fresh = [t for t in ranked.index if t not in held][: n_drop + k - len(held)]
        pool = row[held + fresh].sort_values(ascending=False, kind="stable")
        sold = [t for t in pool.index[k:] if t in held][:n_drop] if held else []
        kept = [t for t in held if t not in sold]
        held = kept + [t for t in pool.index if t in fresh][: k - len(kept)]
        weights.loc[date, held] = 1.0 / max(len(held), 1)
    return weights


def strategy_curve(
    frame: pd.DataFrame,
    kind: str = "market_neutral",
    config: StrategyConfig | None = None,
    *,
    horizon_days: int = 1,
) -> pd.DataFrame:
    """One portfolio day by day: gross and net return, turnover, cumulative net return and
    drawdown from its running peak. ``frame`` has date, ticker, score and next_return; the
    forecast's ``horizon_days`` sets how long each day's targets are held (``holding``)."""
    config = config or StrategyConfig()
    scores, returns = _panels(frame)
    tranches = 1
    if config.holding == "horizon" and kind != "topk" and horizon_days > 1 and len(scores) > 1:
        tranches = max(1, round(label_window(scores.index.to_numpy(), horizon_days)))
    if kind in ("market_neutral", "time_series"):
        if kind == "market_neutral":
            active = market_neutral_weights(scores, config.weighting)
        else:
            active = time_series_weights(scores)
        start = active.iloc[:1] * 0.0
    else:
        held = long_only_weights(scores) if kind == "long_only" else None
        if kind == "topk":
            held = topk_dropout_weights(scores, config.topk or 1, config.n_drop)
        if held is None:
            raise ValueError(f"unknown strategy {kind!r}; expected one of {KINDS}")
        active = held - equal_weights(scores)
        start = active.iloc[:1] * 0.0  # it starts from the benchmark's holdings
    if tranches > 1:  # overlapping tranches: the mean of the last k days' targets
        active = active.rolling(tranches, min_periods=1).mean()
    gross = (active * returns).sum(axis=1)
    turnover = pd.concat([start, active]).diff().abs().sum(axis=1).iloc[1:]
    net = gross - config.cost * turnover
    cumulative = net.cumsum()
    return (
        pd.DataFrame(
            {
                "gross": gross,
                "turnover": turnover,
                "return": net,
                "cumulative": cumulative,
                "drawdown": cumulative - cumulative.cummax().clip(lower=0.0),
            }
        )
        .rename_axis("date")
        .reset_index()
    )


def sharpe(returns: np.ndarray) -> float:
    """Annualised Sharpe ratio of daily returns (0 when they do not vary)."""
    returns = np.asarray(returns, float)
    spread = returns.std(ddof=1) if len(returns) > 1 else 0.0
    return float(returns.mean() / spread * np.sqrt(YEAR)) if spread > 1e-15 else 0.0


def strategy_summary(
    curve: pd.DataFrame, *, horizon_days: int = 1, seed: int = 0, draws: int = 500
) -> dict[str, Any]:
    """Gross and net return (sums of the daily returns), annualised net return, mean daily
    turnover, the Sharpe ratio with its 95 % interval (circular block bootstrap over the days,
    blocks as for the other figures of the horizon; NaN over fewer than ``MIN_BLOCKS``
    independent blocks) and the maximum drawdown."""
    if curve.empty:
        names = ("gross_return", "net_return", "annual_return", "turnover", "sharpe")
        zeros = dict.fromkeys((*names, "sharpe_low", "sharpe_high", "max_drawdown"), 0.0)
        return {**zeros, "days": 0}
    net = curve["return"].to_numpy(float)
    dates = curve["date"].to_numpy()
    sample = bootstrap_draws(dates, horizon_days, seed=seed, draws=draws)
    drawn = net[sample]
    spread = drawn.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(spread > 1e-15, drawn.mean(axis=1) / spread * np.sqrt(YEAR), 0.0)
    ratios[0] = sharpe(net)
    blocks = len(net) / block_length(dates, horizon_days)
    low, high = interval(ratios, blocks) if enough_blocks(blocks) else (np.nan, np.nan)
    return {
        "gross_return": float(curve["gross"].sum()),
        "net_return": float(net.sum()),
        "annual_return": float(net.mean() * YEAR),
        "turnover": float(curve["turnover"].mean()),
        "sharpe": ratios[0],
        "sharpe_low": low,
        "sharpe_high": high,
        "max_drawdown": float(curve["drawdown"].min()),
        "days": len(curve),
    }


def strategy_figures(
    frame: pd.DataFrame,
    config: StrategyConfig,
    *,
    horizon_days: int = 1,
    seed: int = 0,
    kinds: tuple[str, ...] = KINDS,
) -> dict[str, Any]:
    """The summary of each portfolio of ``kinds`` (topk only when configured), keyed by
    kind, and the cost."""
    kinds = tuple(k for k in kinds if k != "topk" or config.topk)
    figures: dict[str, Any] = {
        kind: strategy_summary(
            strategy_curve(frame, kind, config, horizon_days=horizon_days),
            horizon_days=horizon_days,
            seed=seed,
        )
        for kind in kinds
    }
    figures["cost_bps"] = config.cost_bps
    return figures
