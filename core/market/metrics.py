"""Metrics: regression, classification and finance, as plain functions of arrays.

Finance metrics read a frame of (date, ticker, score, forward return):
- IC: per date, the Pearson correlation across tickers of score and forward return; rank IC
  the Spearman one; ICIR = mean IC / std IC. Dates with fewer than 2 tickers are skipped.
- hit rate: share of rows where sign(score) == sign(forward return).
- strategy: each day, each ticker's position is sign(score) (long/short) or 1[score > 0]
  (long/flat), equally weighted; the day's return is the mean of position x the ticker's
  next-day return, minus ``cost`` x turnover (sum of |position change| / tickers).
  Sharpe is annualised with sqrt(252); max drawdown is on the cumulative log return.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

CONSTANT_SPREAD = 0.01  # of the target's standard deviation


def regression_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE, Pearson, Spearman, and ``skill`` = 1 - MSE / MSE of predicting the
    target's mean. A prediction whose spread is under 1 % of the target's is a constant with
    residual noise (a collapsed model): its correlations are reported as 0 with
    ``constant`` = 1, and ``raw_pearson`` keeps the correlation of that noise."""
    prediction, target = np.asarray(prediction, float), np.asarray(target, float)
    error = prediction - target
    mse = float(np.mean(error**2))
    spread, target_spread = np.std(prediction), np.std(target)
    degenerate = spread < 1e-12 or target_spread < 1e-12
    constant = degenerate or spread < CONSTANT_SPREAD * target_spread
    raw = 0.0 if degenerate else float(stats.pearsonr(prediction, target).statistic)
    return {
        "prediction_std": float(spread),
        "constant": float(constant),
        "raw_pearson": raw,
        "skill": float(1 - mse / target_spread**2) if target_spread > 0 else 0.0,
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(error))),
        "pearson": 0.0 if constant else float(stats.pearsonr(prediction, target).statistic),
        "spearman": 0.0 if constant else float(stats.spearmanr(prediction, target).statistic),
    }


def classification_metrics(
    predicted: np.ndarray, actual: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, Any]:
    """Accuracy, per-class precision / recall / F1, macro F1 and the confusion matrix
    (rows = actual, columns = predicted)."""
    predicted, actual = np.asarray(predicted, int), np.asarray(actual, int)
    k = len(class_names)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (actual, predicted), 1)
    per_class = {}
    f1s = []
    for i, name in enumerate(class_names):
        tp = confusion[i, i]
        precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = tp / confusion[i, :].sum() if confusion[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
        f1s.append(f1)
    return {
        "accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
        "macro_f1": float(np.mean(f1s)),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def daily_information_coefficients(frame: pd.DataFrame) -> pd.DataFrame:
    """Per date: IC and rank IC of ``score`` against ``forward_return`` across tickers
    (dates with fewer than 2 tickers or no spread in either are skipped). Computed from
    per-date sums, so it costs a few vectorised passes however many dates there are."""
    data = frame[["date", "score", "forward_return"]].dropna()
    by_date = data.groupby("date", sort=True)
    ranked = data.assign(
        score=by_date["score"].rank(), forward_return=by_date["forward_return"].rank()
    )

    def correlation(values: pd.DataFrame) -> pd.Series:
        centred = values[["score", "forward_return"]] - values.groupby("date")[
            ["score", "forward_return"]
        ].transform("mean")
        x, y = centred["score"], centred["forward_return"]
        sums = pd.DataFrame({"date": values["date"], "xy": x * y, "xx": x * x, "yy": y * y})
        totals = sums.groupby("date", sort=True)[["xy", "xx", "yy"]].sum()
        spread = (totals["xx"] > 1e-24) & (totals["yy"] > 1e-24)
        return (totals["xy"] / np.sqrt(totals["xx"] * totals["yy"])).where(spread)

    counts = by_date.size()
    daily = pd.DataFrame({"ic": correlation(data), "rank_ic": correlation(ranked)})
    daily = daily[(counts >= 2) & daily["ic"].notna()]
    return daily.reset_index()[["date", "ic", "rank_ic"]]


def information_coefficients(frame: pd.DataFrame) -> dict[str, float]:
    """Mean daily IC and rank IC, and ICIR, over the days with a defined IC."""
    daily = daily_information_coefficients(frame)
    if daily.empty:
        return {"ic": float("nan"), "rank_ic": float("nan"), "icir": float("nan"), "ic_days": 0}
    spread = daily["ic"].std(ddof=0)
    return {
        "ic": float(daily["ic"].mean()),
        "rank_ic": float(daily["rank_ic"].mean()),
        "icir": float(daily["ic"].mean() / spread) if spread > 0 else float("nan"),
        "ic_days": len(daily),
    }


def hit_rate(score: np.ndarray, forward_return: np.ndarray) -> float:
    score, forward_return = np.asarray(score), np.asarray(forward_return)
    moved = forward_return != 0
    return float(np.mean(np.sign(score[moved]) == np.sign(forward_return[moved])))


def strategy_curve(
    frame: pd.DataFrame, *, long_short: bool = True, cost: float = 0.001
) -> pd.DataFrame:
    """The daily-rebalanced signal strategy day by day: return after costs, turnover,
    cumulative log return and drawdown from its running peak. ``frame`` has date, ticker,
    score and next_return."""
    positions = frame.pivot(index="date", columns="ticker", values="score").sort_index()
    positions = np.sign(positions) if long_short else (positions > 0).astype(float)
    positions = positions.fillna(0.0)
    returns = frame.pivot(index="date", columns="ticker", values="next_return")
    returns = returns.reindex_like(positions).fillna(0.0)
    tickers = max(positions.shape[1], 1)
    turnover = positions.diff().abs().sum(axis=1) / tickers
    if len(turnover):
        turnover.iloc[0] = positions.iloc[0].abs().sum() / tickers
    daily = (positions * returns).sum(axis=1) / tickers - cost * turnover
    cumulative = daily.cumsum()
    return (
        pd.DataFrame(
            {
                "return": daily,
                "turnover": turnover,
                "cumulative": cumulative,
                "drawdown": cumulative - cumulative.cummax(),
            }
        )
        .rename_axis("date")
        .reset_index()
    )


def strategy_metrics(
    frame: pd.DataFrame, *, long_short: bool = True, cost: float = 0.001
) -> dict[str, float]:
    """Summary of ``strategy_curve``: cumulative return, annualised Sharpe, max drawdown."""
    curve = strategy_curve(frame, long_short=long_short, cost=cost)
    if curve.empty:
        return {
            "cumulative_return": 0.0,
            "sharpe": 0.0,
            "max_drawdown": 0.0,
            "turnover": 0.0,
            "days": 0,
        }
    spread = curve["return"].std()
    return {
        "cumulative_return": float(np.expm1(curve["cumulative"].iloc[-1])),
        "sharpe": float(curve["return"].mean() / spread * np.sqrt(252)) if spread > 0 else 0.0,
        "max_drawdown": float(np.expm1(curve["drawdown"].min())),
        "turnover": float(curve["turnover"].mean()),
        "days": len(curve),
    }
