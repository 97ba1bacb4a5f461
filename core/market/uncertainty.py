"""How sure a figure is, and whether a model beats the best baseline.

Test rows share dates, and labels over a horizon overlap from one date to the next, so rows
are not independent draws. Every interval here comes from a circular block bootstrap over the
test *dates* (``arch.bootstrap``): a draw resamples whole dates in blocks at least two
horizons long, so the serial dependence of overlapping labels stays inside the blocks. Each
metric is computed from per-date sums, so a draw costs one gather and one sum.

- ``metric_intervals``: the 95 % interval of MSE, correlation, direction accuracy, macro F1
  and mean rank IC of one predictor, widened by the Student ratio t(T/b - 1) / z for the
  T/b independent blocks a test period of T dates in blocks of b holds, and by
  1 / sqrt(1 - s) for the share s of the variance overlapping labels carry across block ends
  (``overlap_shortfall``);
- ``paired_difference``: the interval of (model - baseline) on the *same* draws, so what both
  got right or wrong together cancels;
- ``ic_statistics``: mean IC, its Newey-West t-statistic and 95 % interval (Bartlett kernel,
  bandwidth at least the horizon in dates) and ICIR (mean / std of the daily IC, as Qlib
  reports it);
- ``MIN_BLOCKS``: below about ten independent blocks an interval is too wide to act on and
  too uncertain in its own width, so it is not printed as one (``enough_blocks``).

``hedge`` is the use of a co-movement (relevance) forecast: a position hedged against the
context factor with a ratio sized by the forecast correlation rho-hat (and the window's
volatility ratio) keeps 1 - 2 rho-hat rho + rho-hat^2 of its variance, rho the realised
correlation, so it removes 2 rho-hat rho - rho-hat^2 = rho^2 - (rho - rho-hat)^2; its mean
over rows is mean(rho^2) - MSE, drawn from the same per-date sums as the MSE.

The verdicts built on these intervals are in ``core.market.verdict``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch.bootstrap import CircularBlockBootstrap
from arch.covariance.kernel import Bartlett
from scipy import stats

from core.market.labels import forward_window
from core.market.metrics import daily_information_coefficients

LEVEL = 0.95
DRAWS = 1000
MIN_BLOCKS = 10
"""Fewest independent blocks of test dates (test dates / block length) an interval rests on
before it is printed or judged: with fewer, the Student widening alone is over 10 % at 95 %
and the bootstrap's own spread is a guess; the figure reads "too few independent periods"."""


def enough_blocks(blocks: float) -> bool:
    return blocks >= MIN_BLOCKS


def too_few_periods(blocks: float) -> str:
    return f"too few independent periods ({blocks:.1f}, at least {MIN_BLOCKS}) to judge"


HIGHER_IS_BETTER = {
    "pearson": True,
    "hedge": True,
    "direction_accuracy": True,
    "macro_f1": True,
    "rank_ic": True,
    "mse": False,
}
RANGES = {  # what each metric can be: the widened intervals are cut to it
    "pearson": (-1.0, 1.0),
    "hedge": (-math.inf, 1.0),
    "direction_accuracy": (0.0, 1.0),
    "macro_f1": (0.0, 1.0),
    "rank_ic": (-1.0, 1.0),
    "mse": (0.0, math.inf),
}
METRIC_NAMES = {
    "pearson": "correlation",
    "hedge": "hedge variance removed",
    "direction_accuracy": "direction accuracy",
    "macro_f1": "macro F1",
    "rank_ic": "rank IC",
    "mse": "MSE",
}


@dataclass(frozen=True)
class DateStats:
    """Per test date, the sums each metric is built from (one predictor, one horizon)."""

    n: np.ndarray  # rows
    sx: np.ndarray  # sums of score, target, their squares and product
    sy: np.ndarray
    sxx: np.ndarray
    syy: np.ndarray
    sxy: np.ndarray
    squared_error: np.ndarray
    direction_hits: np.ndarray
    confusion: np.ndarray  # (dates, classes, classes): actual x predicted
    rank_ic: np.ndarray  # NaN where a date has no defined IC
    constant: bool  # the predictor's scores are (nearly) constant: its correlations are 0


def date_stats(
    frame: pd.DataFrame,
    dates: np.ndarray,
    *,
    classes: int,
    constant: bool,
) -> DateStats:
    """``frame`` has date, score, target, predicted, actual, forward_return; ``dates`` is the
    sorted array of test dates every predictor shares."""
    position = pd.Index(dates).get_indexer(frame["date"])
    size = len(dates)

    def per_date(values: np.ndarray) -> np.ndarray:
        return np.bincount(position, weights=values, minlength=size)

    x = frame["score"].to_numpy(float)
    y = frame["target"].to_numpy(float)
    confusion = np.zeros((size, classes, classes))
    np.add.at(
        confusion,
        (position, frame["actual"].to_numpy(int), frame["predicted"].to_numpy(int)),
        1.0,
    )
    return DateStats(
        n=per_date(np.ones(len(frame))),
        sx=per_date(x),
        sy=per_date(y),
        sxx=per_date(x * x),
        syy=per_date(y * y),
        sxy=per_date(x * y),
        squared_error=per_date((x - y) ** 2),
        direction_hits=per_date((np.sign(x) == np.sign(y)).astype(float)),
        confusion=confusion,
        rank_ic=_daily_rank_ic(frame, dates),
        constant=constant,
    )


def _daily_rank_ic(frame: pd.DataFrame, dates: np.ndarray) -> np.ndarray:
    """Spearman correlation across tickers of score and forward return, per date of
    ``dates`` (NaN where it is undefined)."""
    daily = daily_information_coefficients(frame[["date", "score", "forward_return"]])
    return daily.set_index("date")["rank_ic"].reindex(pd.Index(dates)).to_numpy(float)


def metrics_of_draws(s: DateStats, draws: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric for each draw; ``draws`` is (draws, dates) of date positions."""
    n = s.n[draws].sum(1)
    sx, sy = s.sx[draws].sum(1), s.sy[draws].sum(1)
    cov = s.sxy[draws].sum(1) - sx * sy / n
    var_x = s.sxx[draws].sum(1) - sx**2 / n
    var_y = s.syy[draws].sum(1) - sy**2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        pearson = np.where((var_x > 1e-12) & (var_y > 1e-12), cov / np.sqrt(var_x * var_y), 0.0)
    if s.constant:
        pearson = np.zeros_like(pearson)
    confusion = s.confusion[draws].sum(1)  # (draws, k, k)
    true_positive = np.einsum("dkk->dk", confusion)
    predicted, actual = confusion.sum(1), confusion.sum(2)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(actual > 0, true_positive / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw of dates without any IC
        rank_ic = np.nanmean(s.rank_ic[draws], axis=1)
    if s.constant:
        rank_ic = np.zeros_like(rank_ic)
    mse = s.squared_error[draws].sum(1) / n
    return {
        "mse": mse,
        "hedge": s.syy[draws].sum(1) / n - mse,
        "pearson": pearson,
        "direction_accuracy": s.direction_hits[draws].sum(1) / n,
        "macro_f1": f1.mean(1),
        "rank_ic": rank_ic,
    }


BLOCK_HORIZONS = 2
"""Blocks span this many horizons. Labels over overlapping windows of h dates are correlated
up to lag h - 1 (linearly falling, 1 - k/h); a block of b dates keeps the pairs inside it and
loses those across its ends, so its variance is short by about h / 3b: a third at b = h
(intervals 18 % too narrow, and a no-signal model called better than momentum in 2 of 20
control markets), a sixth at b = 2h, which ``overlap_shortfall`` puts back. Longer blocks
are fewer, which the Student widening in ``interval`` pays for."""


def label_window(dates: np.ndarray, horizon_days: int) -> float:
    """The test dates a label window (t, t + h] spans, on average over the dates whose window
    is complete (business days: 5 for 7 days, 21.4 for 30; weekly dates: 4 for 30 days).
    Counting the window's dates holds where the test dates have gaps; the median gap between
    dates (1 day for business days, used until 2026-12-06) counted 30 calendar days as 30."""
    days = np.unique(pd.to_datetime(pd.Series(dates)).to_numpy(dtype="datetime64[ns]"))
    start, end, complete = forward_window(days, horizon_days)
    return float(np.mean((end - start)[complete])) if complete.any() else float(len(days))


def block_length(dates: np.ndarray, horizon_days: int) -> int:
    """Test dates per block: at least two label windows (``BLOCK_HORIZONS`` x
    ``label_window``: blocks of 10 and 43 business days for 7 and 30 calendar days, 8 weekly
    dates for 30) and at least the rule-of-thumb T^(1/3)."""
    days = len(np.unique(dates))
    by_horizon = math.ceil(BLOCK_HORIZONS * label_window(dates, horizon_days))
    return int(max(1, min(days, max(by_horizon, round(days ** (1 / 3))))))


def overlap_shortfall(dates: np.ndarray, horizon_days: int) -> float:
    """The share of a figure's variance the block bootstrap misses: labels overlapping over a
    window of h dates correlate as 1 - k/h, and blocks of b dates lose the pairs across their
    ends, h / 3b of the long-run variance (a sixth at b = 2h; at most a third, the b = h
    value, which under-states it for blocks shorter than the window). Exact for the mean of
    overlapping labels; for a correlation, a product of two overlapping series, the share is
    nearer h / 4b, so for the verdict's figures this is a slightly cautious heuristic, and
    what calibrates it is ``python -m bench.spa_size``: with it the interval's lower end and
    the SPA test say "better" on 2.6-2.7 % of null panels against a nominal 2.5 % (3-4 %
    without it). Intervals and SPA p-values are widened by 1 / sqrt(1 - shortfall)."""
    window = label_window(dates, horizon_days)
    return float(min(window / (3 * block_length(dates, horizon_days)), 1 / 3))


def bootstrap_draws(dates: np.ndarray, horizon_days: int, *, seed: int, draws: int = DRAWS):
    """(1 + draws, dates) matrix of date positions: row 0 is the test period itself (each
    date once), the others come from a circular block bootstrap."""
    sampler = CircularBlockBootstrap(
        block_length(dates, horizon_days), np.arange(len(dates)), seed=seed
    )
    resampled = [data[0][0] for data in sampler.bootstrap(draws)]
    return np.stack([np.arange(len(dates)), *resampled])


def interval(
    values: np.ndarray,
    blocks: float,
    level: float = LEVEL,
    bounds: tuple[float, float] = (-math.inf, math.inf),
    *,
    shortfall: float = 0.0,
) -> tuple[float, float]:
    """Percentile interval of ``values`` (row 0 the full-sample figure, then the draws),
    widened about the full-sample figure by t(blocks - 1) / z: with only ``blocks``
    independent blocks of dates the bootstrap spread is too narrow by about that ratio
    (measured coverage of a known correlation: 0.93-0.95 with it, 0.82-0.92 without), and by
    1 / sqrt(1 - ``shortfall``) for the variance the blocks miss (``overlap_shortfall``). The
    widened interval is cut to ``bounds``, what the figure can be (a correlation stays in
    [-1, 1] even over four blocks)."""
    point, drawn = values[0], values[1:]
    drawn = drawn[np.isfinite(drawn)]
    if not len(drawn) or not np.isfinite(point):
        return (float("nan"), float("nan"))
    quantile = (1 + level) / 2
    widen = stats.t.ppf(quantile, max(blocks - 1, 1)) / stats.norm.ppf(quantile)
    widen /= math.sqrt(1 - shortfall)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(point + (drawn - point) * widen, [tail, 100 - tail])
    return (float(max(low, bounds[0])), float(min(high, bounds[1])))


def metric_intervals(
    metrics: dict[str, np.ndarray], blocks: float, *, shortfall: float = 0.0
) -> dict[str, list[float]]:
    """The 95 % interval of every metric of one predictor, from its ``metrics_of_draws``."""
    return {
        name: list(interval(values, blocks, bounds=RANGES[name], shortfall=shortfall))
        for name, values in metrics.items()
    }


def paired_difference(
    model: dict[str, np.ndarray],
    baseline: dict[str, np.ndarray],
    metric: str,
    blocks: float,
    level: float = LEVEL,
    *,
    shortfall: float = 0.0,
) -> dict[str, float]:
    """Interval of the improvement of the model over a baseline, both measured on the same
    draws (``metrics_of_draws``); for MSE baseline minus model, so positive always means the
    model is better."""
    a, b = model[metric], baseline[metric]
    gain = a - b if HIGHER_IS_BETTER[metric] else b - a
    least, most = RANGES[metric]
    bounds = (least - most, most - least)
    low, high = interval(gain, blocks, level, bounds, shortfall=shortfall)
    return {"low": low, "high": high}


def ic_statistics(daily_ic: np.ndarray, horizon_dates: int) -> dict[str, float]:
    """Mean daily IC, its Newey-West t-statistic, two-sided p-value and 95 % interval
    (mean +/- 1.96 Newey-West standard errors), and ICIR."""
    ic = np.asarray(daily_ic, float)
    ic = ic[np.isfinite(ic)]
    if len(ic) < 3 or ic.std() < 1e-12:
        undefined = float("nan")
        return {
            "ic_mean": float(ic.mean()) if len(ic) else undefined,
            "ic_t_nw": undefined,
            "ic_p_nw": undefined,
            "ic_low": undefined,
            "ic_high": undefined,
            "icir": undefined,
            "ic_days": len(ic),
        }
    bandwidth = max(horizon_dates, 1)
    long_run_variance = float(Bartlett(ic, bandwidth=bandwidth).cov.long_run[0, 0])
    error = math.sqrt(max(long_run_variance, 1e-18) / len(ic))
    t = float(ic.mean() / error)
    z = stats.norm.ppf((1 + LEVEL) / 2)
    return {
        "ic_mean": float(ic.mean()),
        "ic_t_nw": t,
        "ic_p_nw": float(2 * stats.norm.sf(abs(t))),
        "ic_low": float(ic.mean() - z * error),
        "ic_high": float(ic.mean() + z * error),
        "icir": float(ic.mean() / ic.std(ddof=1)),
        "ic_days": len(ic),
    }
