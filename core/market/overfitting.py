"""Corrections for many tries: what the best of N trials is worth once N is counted.

- ``deflated_sharpe``: Bailey and Lopez de Prado (2014). The Sharpe ratio luck alone gives
  the best of N trials, SR0 = sqrt(V) ((1 - g) Z(1 - 1/N) + g Z(1 - 1/(N e))) with V the
  variance of the trials' Sharpe ratios and g Euler's constant; the deflated Sharpe ratio is
  the probability that the chosen trial's true Sharpe exceeds SR0, from its skewness and
  kurtosis over T days (the probabilistic Sharpe ratio against SR0).
- ``backtest_overfitting``: the probability of backtest overfitting (Bailey, Borwein, Lopez de
  Prado and Zhu 2017) by combinatorially symmetric cross-validation: the days cut into S
  blocks, every half of them in-sample and the rest out-of-sample; PBO is the share of those
  splits where the trial best in-sample ranks at or below the median out-of-sample.
- ``superior_predictive_ability``: Hansen's SPA test (``arch.bootstrap.SPA``): is any trial's
  loss below the benchmark's, with every trial in the universe? Its p-values are widened
  for few independent blocks of days (``few_blocks_pvalue``), as the intervals are.
- ``model_confidence_set``: Hansen, Lunde and Nason's MCS (``arch.bootstrap.MCS``): the runs
  that cannot be told from the best.
- ``diebold_mariano``: the mean daily loss differential of two runs over its Newey-West (HAC,
  Bartlett) standard error.

Sharpe ratios here are per day (not annualised) unless a name says otherwise.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from arch.bootstrap import MCS, SPA
from arch.covariance.kernel import Bartlett
from scipy import stats

EULER = 0.5772156649015329
PBO_BLOCKS = 16
"""CSCV cuts the days into this many blocks (C(16, 8) = 12,870 splits), fewer when the test
period has under four days per block."""


def daily_sharpe(returns: np.ndarray) -> np.ndarray:
    """Per-day Sharpe ratio of each column of a (days, trials) matrix (0 without spread)."""
    returns = np.asarray(returns, float)
    if returns.ndim == 1:
        returns = returns[:, None]
    spread = returns.std(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 1e-15, returns.mean(axis=0) / spread, 0.0)


def expected_max_sharpe(sharpe_variance: float, trials: int) -> float:
    """SR0: the per-day Sharpe ratio the best of ``trials`` skill-less trials reaches."""
    if trials < 2 or sharpe_variance <= 0:
        return 0.0
    z = stats.norm.ppf
    return float(
        math.sqrt(sharpe_variance)
        * ((1 - EULER) * z(1 - 1 / trials) + EULER * z(1 - 1 / (trials * math.e)))
    )


def deflated_sharpe(
    returns: np.ndarray, *, trials: int, sharpe_variance: float
) -> dict[str, float]:
    """The chosen trial's daily returns against SR0 for ``trials`` tries whose Sharpe ratios
    vary by ``sharpe_variance``: its Sharpe, SR0 (both per day) and the deflated ratio."""
    returns = np.asarray(returns, float)
    days = len(returns)
    observed = float(daily_sharpe(returns)[0]) if days > 1 else 0.0
    threshold = expected_max_sharpe(sharpe_variance, trials)
    if returns.std() > 1e-15:
        skew = float(stats.skew(returns))
        kurtosis = float(stats.kurtosis(returns, fisher=False))
    else:
        skew, kurtosis = 0.0, 3.0
    scale = 1 - skew * observed + (kurtosis - 1) / 4 * observed**2
    z = (observed - threshold) * math.sqrt(max(days - 1, 1)) / math.sqrt(max(scale, 1e-12))
    return {
        "sharpe": observed,
        "expected_max_sharpe": threshold,
        "deflated_sharpe": float(stats.norm.cdf(z)),
        "trials": trials,
        "days": days,
    }


def backtest_overfitting(returns: np.ndarray, blocks: int = PBO_BLOCKS) -> dict[str, float]:
    """PBO by CSCV over a (days, trials) matrix of daily returns; with the number of splits
    and the median logit of the in-sample best's out-of-sample relative rank."""
    returns = np.asarray(returns, float)
    days, trials = returns.shape
    blocks = min(blocks, 2 * (days // 8))
    if trials < 2 or blocks < 2:
        return {"pbo": float("nan"), "splits": 0, "logit_median": float("nan"), "blocks": blocks}
    parts = np.array_split(np.arange(days), blocks)
    count = np.array([len(p) for p in parts], float)
    first = np.stack([returns[p].sum(0) for p in parts])  # (blocks, trials)
    second = np.stack([(returns[p] ** 2).sum(0) for p in parts])
    chosen = np.array(list(itertools.combinations(range(blocks), blocks // 2)))
    inside = np.zeros((len(chosen), blocks))
    np.put_along_axis(inside, chosen, 1.0, axis=1)

    def sharpe_of(mask: np.ndarray) -> np.ndarray:
        n = (mask @ count)[:, None]
        mean = (mask @ first) / n
        variance = ((mask @ second) - n * mean**2) / (n - 1)
        spread = np.sqrt(np.clip(variance, 0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(spread > 1e-15, mean / spread, 0.0)

    in_sample, out_of_sample = sharpe_of(inside), sharpe_of(1 - inside)
    best = in_sample.argmax(axis=1)
    ranks = stats.rankdata(out_of_sample, axis=1)  # 1 = worst, ties averaged
    relative = ranks[np.arange(len(best)), best] / (trials + 1)
    logits = np.log(relative / (1 - relative))
    return {
        "pbo": float(np.mean(logits <= 0)),
        "splits": len(chosen),
        "logit_median": float(np.median(logits)),
        "blocks": blocks,
    }


def superior_predictive_ability(
    benchmark: np.ndarray,
    models: np.ndarray,
    *,
    block: int,
    shortfall: float = 0.0,
    seed: int = 0,
    reps: int = 1000,
) -> dict[str, Any]:
    """Hansen's SPA p-values (consistent, lower, upper) for H0: no model's mean loss is below
    the benchmark's. Losses are daily, lower is better; ``models`` is (days, k).

    The p-values are widened for the number of independent blocks and the ``shortfall`` of
    the variance the blocks miss (``few_blocks_pvalue``); ``uncorrected`` keeps ``arch``'s
    own."""
    benchmark = np.asarray(benchmark, float)
    models = np.asarray(models, float).reshape(len(benchmark), -1)
    blocks = len(benchmark) / max(block, 1)
    if np.abs(models - benchmark[:, None]).max(initial=0.0) < 1e-15:
        same = {"consistent": 1.0, "lower": 1.0, "upper": 1.0}
        return {**same, "uncorrected": same, "blocks": blocks, "models": models.shape[1]}
    test = SPA(benchmark, models, block_size=block, reps=reps, bootstrap="cbb", seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # models that never differ from it
        test.compute()
    found = {name: float(value) for name, value in test.pvalues.items()}
    widened = {
        name: few_blocks_pvalue(p, blocks, shortfall=shortfall, reps=reps)
        for name, p in found.items()
    }
    return {**widened, "uncorrected": found, "blocks": blocks, "models": models.shape[1]}


def few_blocks_pvalue(
    pvalue: float, blocks: float, *, shortfall: float = 0.0, reps: int = 1000
) -> float:
    """A bootstrap p-value read as a normal tail and returned as the Student t(blocks - 1) tail
    of the same statistic shrunk by sqrt(1 - ``shortfall``): the widening
    ``core.market.uncertainty.interval`` gives the intervals, for the same reasons (over few
    independent blocks the bootstrap's spread is too narrow, and blocks miss the share
    ``shortfall`` of the variance, ``core.market.uncertainty.overlap_shortfall``). A p-value
    of 0 counts as 1 / (reps + 1), the bootstrap's resolution; one above 0.5, which the t
    tail would pull towards 0.5, is kept. Checked for one model against its benchmark; for
    the maximum over many trials (a sweep) it is the same widening, not separately measured.

    Measured on null panels (two predictors equally good, 330 business days x 7 tickers,
    overlapping labels; ``python -m bench.spa_size``): figures in docs/models.md, "How often
    the tests are wrong"."""
    if not np.isfinite(pvalue) or pvalue >= 1.0:
        return float(pvalue)
    statistic = stats.norm.isf(max(pvalue, 1.0 / (reps + 1))) * np.sqrt(1.0 - shortfall)
    return float(max(pvalue, stats.t.sf(statistic, max(blocks - 1.0, 1.0))))


def model_confidence_set(
    losses: pd.DataFrame, *, block: int, size: float = 0.10, seed: int = 0, reps: int = 1000
) -> dict[str, Any]:
    """The MCS at 1 - ``size`` over the columns of daily ``losses``: who is in, who is out,
    and each one's MCS p-value."""
    test = MCS(losses, size=size, block_size=block, reps=reps, bootstrap="cbb", seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        test.compute()
    pvalues = test.pvalues["Pvalue"]
    return {
        "size": size,
        "included": [str(name) for name in test.included],
        "excluded": [str(name) for name in test.excluded],
        "pvalues": {str(name): float(value) for name, value in pvalues.items()},
    }


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, *, lags: int) -> dict[str, float]:
    """DM statistic of the daily loss differential a - b (negative: a has the lower loss)
    with a Bartlett HAC variance of ``lags`` lags, and its two-sided normal p-value."""
    differential = np.asarray(loss_a, float) - np.asarray(loss_b, float)
    days = len(differential)
    mean = float(differential.mean())
    if days < 3 or differential.std() < 1e-15:
        return {"statistic": 0.0, "pvalue": 1.0, "mean_differential": mean, "days": days}
    variance = float(Bartlett(differential, bandwidth=lags).cov.long_run[0, 0])
    statistic = mean / math.sqrt(max(variance, 1e-30) / days)
    return {
        "statistic": statistic,
        "pvalue": float(2 * stats.norm.sf(abs(statistic))),
        "mean_differential": mean,
        "days": days,
    }
