"""Metrics: regression, classification and finance, as plain functions of arrays.

Finance metrics read a frame of (date, ticker, score, forward return):
- IC: per date, the Pearson correlation across tickers of score and forward return; rank IC
  the Spearman one; ICIR = mean IC / std IC. Dates with fewer than 2 tickers are skipped.
- hit rate: share of rows where sign(score) == sign(forward return).
- ``daily_skill``: the primary metric as a daily series whose mean is the metric, the loss
  the SPA, MCS and Diebold-Mariano tests compare (``core.market.overfitting``).

The trading figures are in ``core.market.strategy``.
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


def daily_skill(frame: pd.DataFrame, metric: str, *, constant: bool = False) -> pd.Series:
    """The primary metric day by day, indexed by date, for the tests that compare daily losses.

    ``pearson``: each day's sum of z(score) x z(target), the z-scores over the whole test
    period, divided by the mean rows per day, so the days' mean is the pooled correlation.
    ``rank_ic``: the day's rank IC against the forward return (0 where undefined).
    ``hedge``: the day's sum of 2 score x target - score^2 over the mean rows per day, so the
    days' mean is the variance a forecast-sized hedge removes (``core.market.uses``). A constant
    predictor (``constant``) scores 0 every day, as its correlations do. ``frame`` has date,
    score, target and forward_return."""
    dates = pd.Index(np.sort(frame["date"].unique()))
    if metric == "hedge":  # a constant forecast hedges too: its share is not 0
        x, y = frame["score"].to_numpy(float), frame["target"].to_numpy(float)
        sums = pd.Series(2 * x * y - x * x).groupby(frame["date"].to_numpy()).sum()
        return (sums / (len(frame) / len(dates))).reindex(dates).fillna(0.0)
    if constant:
        return pd.Series(0.0, index=dates)
    if metric == "rank_ic":
        daily = daily_information_coefficients(frame).set_index("date")["rank_ic"]
        return daily.reindex(dates).fillna(0.0)
    x, y = frame["score"].to_numpy(float), frame["target"].to_numpy(float)
    if x.std() < 1e-12 or y.std() < 1e-12:
        return pd.Series(0.0, index=dates)
    product = (x - x.mean()) / x.std() * (y - y.mean()) / y.std()
    sums = pd.Series(product).groupby(frame["date"].to_numpy()).sum()
    return (sums / (len(frame) / len(dates))).reindex(dates).fillna(0.0)
