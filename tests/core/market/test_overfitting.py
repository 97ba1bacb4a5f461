"""Corrections for many tries (core.market.overfitting) against independent few-line
computations on a fixed return matrix, and the SPA and MCS on cases with a known answer."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.stats import kurtosis, norm, skew

from core.market.overfitting import (
    backtest_overfitting,
    daily_sharpe,
    deflated_sharpe,
    diebold_mariano,
    few_blocks_pvalue,
    model_confidence_set,
    superior_predictive_ability,
)


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    """A fixed (days, trials) matrix: 10 trials of 240 days, no skill but different luck."""
    rng = np.random.default_rng(20240601)
    return rng.standard_t(6, (240, 10)) * 0.01


def test_the_deflated_sharpe_ratio_matches_the_papers_formula(returns) -> None:
    sharpes = returns.mean(0) / returns.std(0, ddof=1)
    chosen = returns[:, sharpes.argmax()]
    variance = sharpes.var(ddof=1)
    n, gamma = 10, 0.5772156649015329
    sr0 = math.sqrt(variance) * (
        (1 - gamma) * norm.ppf(1 - 1 / n) + gamma * norm.ppf(1 - 1 / (n * math.e))
    )
    sr = sharpes.max()
    g3, g4 = skew(chosen), kurtosis(chosen, fisher=False)
    expected = norm.cdf((sr - sr0) * math.sqrt(239) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))
    got = deflated_sharpe(chosen, trials=n, sharpe_variance=variance)
    assert got["sharpe"] == pytest.approx(sr, rel=1e-12)
    assert got["expected_max_sharpe"] == pytest.approx(sr0, rel=1e-12)
    assert got["deflated_sharpe"] == pytest.approx(expected, rel=1e-10)
    assert got["deflated_sharpe"] < 0.95, "the luckiest of 10 skill-less trials is no evidence"
    one = deflated_sharpe(chosen, trials=1, sharpe_variance=variance)
    assert one["expected_max_sharpe"] == 0 and one["deflated_sharpe"] > got["deflated_sharpe"]


def test_the_pbo_matches_a_loop_over_every_split(returns) -> None:
    """CSCV with 8 blocks (70 splits) written as the paper describes it."""
    blocks = np.array_split(np.arange(240), 8)
    below = []
    for inside in itertools.combinations(range(8), 4):
        rows_in = np.concatenate([blocks[b] for b in inside])
        rows_out = np.concatenate([blocks[b] for b in range(8) if b not in inside])
        frame_in, frame_out = pd.DataFrame(returns[rows_in]), pd.DataFrame(returns[rows_out])
        best = (frame_in.mean() / frame_in.std()).idxmax()
        rank = (frame_out.mean() / frame_out.std()).rank()[best]
        omega = rank / 11
        below.append(math.log(omega / (1 - omega)) <= 0)
    got = backtest_overfitting(returns, blocks=8)
    assert got["splits"] == 70
    assert got["pbo"] == pytest.approx(np.mean(below), abs=1e-12)


def test_pbo_is_low_when_one_trial_really_is_better() -> None:
    rng = np.random.default_rng(5)
    matrix = rng.normal(0, 0.01, (400, 8))
    matrix[:, 3] += 0.004
    assert backtest_overfitting(matrix)["pbo"] < 0.05
    assert daily_sharpe(matrix).argmax() == 3


def test_the_diebold_mariano_statistic_matches_a_direct_hac_computation() -> None:
    rng = np.random.default_rng(8)
    shocks = rng.normal(size=300)
    d = np.empty(300)
    d[0] = shocks[0]
    for t in range(1, 300):
        d[t] = 0.5 * d[t - 1] + shocks[t]
    loss_b = rng.normal(1.0, 0.1, 300)
    loss_a = loss_b + 0.1 + 0.2 * d
    lags = 5
    x = (loss_a - loss_b) - (loss_a - loss_b).mean()
    gammas = [x[k:] @ x[: len(x) - k] / len(x) for k in range(lags + 1)]
    long_run = gammas[0] + 2 * sum((1 - k / (lags + 1)) * gammas[k] for k in range(1, lags + 1))
    expected = (loss_a - loss_b).mean() / math.sqrt(long_run / 300)
    got = diebold_mariano(loss_a, loss_b, lags=lags)
    assert got["statistic"] == pytest.approx(expected, rel=1e-9)
    assert got["pvalue"] == pytest.approx(2 * norm.sf(abs(expected)), rel=1e-9)
    assert diebold_mariano(loss_b, loss_b, lags=lags)["pvalue"] == 1.0


def test_spa_finds_a_better_model_and_not_a_lucky_universe(returns) -> None:
    rng = np.random.default_rng(9)
    benchmark = rng.normal(0, 0.01, 240)
    lucky = superior_predictive_ability(benchmark, returns, block=5, seed=1)
    assert lucky["consistent"] > 0.05 and lucky["models"] == 10
    better = returns.copy()
    better[:, 0] = benchmark - 0.004
    assert superior_predictive_ability(benchmark, better, block=5, seed=1)["consistent"] < 0.05
    same = superior_predictive_ability(benchmark, benchmark[:, None], block=5)
    assert same["consistent"] == 1.0


def test_the_model_confidence_set_drops_a_clearly_worse_run() -> None:
    rng = np.random.default_rng(11)
    losses = pd.DataFrame(rng.normal(1.0, 0.2, (300, 3)), columns=["run 1", "run 2", "run 3"])
    losses["run 3"] += 0.3
    found = model_confidence_set(losses, block=5, seed=0)
    assert "run 3" in found["excluded"] and "run 1" in found["included"]
    assert set(found["pvalues"]) == {"run 1", "run 2", "run 3"}


def test_spa_p_values_widen_for_few_blocks_as_a_student_t_tail() -> None:
    """The oracle: a p-value of 0.025 is a normal statistic of 1.96, whose t tail with
    6.7 degrees of freedom (7.7 blocks: 330 days in blocks of 43) is 0.046; many blocks
    leave it near the normal tail, and 0 counts as the bootstrap's resolution."""
    assert few_blocks_pvalue(0.025, 7.7) == pytest.approx(
        stats.t.sf(norm.isf(0.025), 6.7), rel=1e-12
    )
    assert 0.04 < few_blocks_pvalue(0.025, 7.7) < 0.05
    assert few_blocks_pvalue(0.025, 10_000) == pytest.approx(0.025, abs=1e-4)
    assert few_blocks_pvalue(0.0, 7.7, reps=999) == pytest.approx(stats.t.sf(norm.isf(1e-3), 6.7))
    assert few_blocks_pvalue(1.0, 7.7) == 1.0
    assert few_blocks_pvalue(0.9, 7.7) == 0.9, "never smaller than arch's"
    assert few_blocks_pvalue(0.025, 1.5) == pytest.approx(stats.t.sf(norm.isf(0.025), 1.0))


def test_spa_reports_arch_s_p_values_beside_the_widened_ones() -> None:
    rng = np.random.default_rng(5)
    benchmark = rng.normal(0, 0.01, 330)
    better = (benchmark - 0.002 + rng.normal(0, 0.01, 330))[:, None]
    found = superior_predictive_ability(benchmark, better, block=43, seed=1)
    assert found["blocks"] == pytest.approx(330 / 43)
    raw = found["uncorrected"]["consistent"]
    assert found["consistent"] == pytest.approx(few_blocks_pvalue(raw, 330 / 43))
    assert found["consistent"] > raw


@pytest.mark.slow
def test_on_null_panels_the_widened_spa_rejects_near_its_nominal_rate() -> None:
    """bench/spa_size.py's null panels (two equally good predictors, 330 days x 7 tickers,
    overlapping 30-day labels, 7.7 blocks): the widened p-value falls below 0.025 in at most
    4.5 % of 300 panels (3.2 % measured over 1,000; arch's own 5.4 %)."""
    from bench.spa_size import DATES, HORIZONS, null_panel
    from core.market.metrics import daily_skill
    from core.market.uncertainty import block_length

    dates = pd.bdate_range("2021-01-01", periods=DATES)
    block = block_length(dates.to_numpy(), 30)
    rejected = {"arch": 0, "widened": 0}
    panels = 300
    for panel in range(panels):
        tables = null_panel(np.random.default_rng([panel, 30]), dates, HORIZONS[30], rho=0.0)
        skill = {n: daily_skill(f, "pearson").to_numpy() for n, f in tables.items()}
        spa = superior_predictive_ability(-skill["rival"], -skill["model"], block=block, seed=panel)
        rejected["arch"] += spa["uncorrected"]["consistent"] < 0.025
        rejected["widened"] += spa["consistent"] < 0.025
    assert rejected["widened"] / panels <= 0.045, rejected
    assert rejected["arch"] > rejected["widened"], rejected
