"""The verdict over many tries: a sweep's trials (or any set of runs) against the baselines.

An analyst who tries N configurations and keeps the best has a best figure inflated by luck.
``tries_report`` counts the N, per horizon, on the test rows every trial shares:

- the primary metric's daily series (``core.market.metrics.daily_skill``) of every trial and
  every rival (the baselines and the constant-mean predictor); Hansen's SPA test of the best
  rival against the whole universe of trials (is *any* trial better, knowing N were tried?);
- each trial's market-neutral daily net returns (``core.market.strategy``): the raw Sharpe of
  the trial with the highest one beside its deflated Sharpe ratio (N trials, the variance of
  their Sharpe ratios) and the probability of backtest overfitting by CSCV over all N.

The verdict rests on the SPA p-value of the primary metric at the horizons with at least
``MIN_SPA_BLOCKS`` independent blocks of test dates (Bonferroni over them): "the best of N
trials beats the baseline after accounting for N tries", or "no evidence: the best of N
trials is what luck alone gives p of the time". A best trial that collapsed never beats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.market.evaluation import finance_rows
from core.market.metrics import daily_skill, regression_metrics
from core.market.overfitting import (
    backtest_overfitting,
    daily_sharpe,
    deflated_sharpe,
    superior_predictive_ability,
)
from core.market.predictions import horizons_in
from core.market.strategy import YEAR, StrategyConfig, strategy_curve
from core.market.uncertainty import LEVEL, block_length, overlap_shortfall
from core.market.verdict import MEAN, collapse_check, predictor_tables

MIN_SPA_BLOCKS = 4
"""A horizon whose test period holds fewer independent blocks than this (30 days on a year of
test dates: about two) is reported but left out of the verdict: on the no-signal control
``arch``'s SPA gave p = 0.06 at 1.6 blocks, and a Student t with under three degrees of
freedom (``few_blocks_pvalue``) is too rough a correction to lean on."""


def _constant(table: pd.DataFrame) -> bool:
    return bool(regression_metrics(table["score"], table["target"])["constant"])


def tries_report(
    spec: Any,
    trials: dict[str, pd.DataFrame],
    baselines: dict[str, pd.DataFrame],
    rows: pd.DataFrame,
    *,
    primary: dict[str, Any],
    strategy: StrategyConfig | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """DSR, PBO and SPA of ``trials`` (name -> (date, ticker, score_hd, class_hd) on the test
    rows) against ``baselines`` (the same shape, never the oracle), per horizon, and the
    verdict. ``rows`` are the outcomes of those rows; ``primary`` the declared metric."""
    strategy = strategy or StrategyConfig()
    metric, name = primary["metric"], primary["name"]
    kind = (primary.get("use") or {"check": "market_neutral"})["check"]
    count = len(trials)
    horizons = horizons_in(next(iter(trials.values())))
    sections: dict[str, Any] = {}
    for h in horizons:
        tables = predictor_tables(spec, {**trials, **baselines}, rows, h)
        dates = np.sort(rows["date"].unique())
        block = block_length(dates, h)
        constant = {n: n == MEAN or _constant(t) for n, t in tables.items()}
        skill = pd.DataFrame(
            {n: daily_skill(t, metric, constant=constant[n]) for n, t in tables.items()}
        ).fillna(0.0)
        rivals = [n for n in tables if n not in trials]
        best_rival = max(rivals, key=lambda n: skill[n].mean())
        best_trial = max(trials, key=lambda n: skill[n].mean())
        spa = superior_predictive_ability(
            -skill[best_rival].to_numpy(),
            -skill[list(trials)].to_numpy(),
            block=block,
            shortfall=overlap_shortfall(dates, h),
            seed=seed,
        )
        traded = _trading_figures(trials, rows, h, kind, strategy, count) if kind else {}
        collapse = collapse_check(
            trials[best_trial]
            .rename(columns=lambda c: c if c in ("date", "ticker") else f"model_{c}")
            .merge(rows, on=["date", "ticker"]),
            spec,
            [h],
        )
        sections[f"{h}d"] = {
            "best_trial": best_trial,
            "best_trial_skill": float(skill[best_trial].mean()),
            "best_baseline": best_rival,
            "best_baseline_skill": float(skill[best_rival].mean()),
            "best_trial_collapsed": collapse["collapsed"],
            "spa_pvalue": spa["consistent"],
            "spa": spa,
            **traded,
            "block_dates": block,
            "blocks": len(dates) / block,
        }
    return {
        "trials": count,
        "primary": primary,
        "cost_bps": strategy.cost_bps,
        "horizons": sections,
        "verdict": tries_verdict(sections, count, name),
    }


def _trading_figures(
    trials: dict[str, pd.DataFrame],
    rows: pd.DataFrame,
    h: int,
    kind: str,
    strategy: StrategyConfig,
    count: int,
) -> dict[str, Any]:
    """The highest Sharpe of the trials' ``kind`` portfolios (the one their use trades), its
    deflated Sharpe and the PBO over the trials."""
    returns = pd.DataFrame(
        {
            n: strategy_curve(
                finance_rows(predictor[f"score_{h}d"], rows, h), kind, strategy, horizon_days=h
            ).set_index("date")["return"]
            for n, predictor in trials.items()
        }
    ).fillna(0.0)
    sharpes = daily_sharpe(returns.to_numpy())
    chosen = list(trials)[int(np.argmax(sharpes))]
    deflated = deflated_sharpe(
        returns[chosen].to_numpy(),
        trials=count,
        sharpe_variance=float(np.var(sharpes, ddof=1)) if count > 1 else 0.0,
    )
    return {
        "strategy": kind,
        "sharpe_trial": chosen,
        "sharpe": deflated["sharpe"] * np.sqrt(YEAR),
        "expected_max_sharpe": deflated["expected_max_sharpe"] * np.sqrt(YEAR),
        "deflated_sharpe": deflated["deflated_sharpe"],
        "pbo": backtest_overfitting(returns.to_numpy()) if count > 1 else None,
    }


def tries_verdict(sections: dict[str, Any], count: int, name: str) -> dict[str, Any]:
    """The sentence: the smallest SPA p-value over the horizons with at least
    ``MIN_SPA_BLOCKS`` blocks, times their number."""
    tried = f"the best of {count} trials" if count > 1 else "the run"
    judged = {k: s for k, s in sections.items() if s["blocks"] >= MIN_SPA_BLOCKS}
    if not judged:
        text = (
            f"no evidence: the test period is too short for an SPA test at any horizon "
            f"(fewer than {MIN_SPA_BLOCKS} independent blocks)"
        )
        return {"verdict": "no evidence", "sentence": text, "pvalue": 1.0, "horizons": []}
    key, best = min(judged.items(), key=lambda item: item[1]["spa_pvalue"])
    adjusted = min(1.0, best["spa_pvalue"] * len(judged))
    days = f"{key.removesuffix('d')} days"
    counted = f"{count} {'tries' if count > 1 else 'try'} and {len(judged)} horizon" + (
        "s" if len(judged) > 1 else ""
    )
    if best["best_trial_collapsed"] and adjusted < 1 - LEVEL:
        text = f"collapsed: no skill ({tried} on {name} at {days} is a collapsed model)"
        return {"verdict": "collapsed", "sentence": text, "pvalue": adjusted, "horizons": [*judged]}
    if adjusted < 1 - LEVEL:
        text = (
            f"{tried} beats the baseline ({best['best_baseline']}) on {name} at {days} after "
            f"accounting for {counted} (SPA p-value {adjusted:.3f})"
        )
        return {"verdict": "beats", "sentence": text, "pvalue": adjusted, "horizons": [*judged]}
    text = (
        f"no evidence: {tried} is what luck alone gives {adjusted * 100:.0f} % of the time "
        f"(SPA p-value on {name} at {days} against {best['best_baseline']}, {counted} "
        "counted)"
    )
    return {"verdict": "no evidence", "sentence": text, "pvalue": adjusted, "horizons": [*judged]}
