"""The headline verdict: one primary metric, declared before evaluation, against the best rival.

- ``EvaluationConfig`` declares the primary metric; ``declare_primary`` resolves 'auto' from
  the target's use (``core.market.uses``): rank IC for a return target where the test
  cross-section holds at least ``MIN_CROSS_SECTION`` tickers, pooled correlation for one with
  fewer, the variance a forecast-sized hedge removes for a co-movement (relevance) target.
- The rivals on a metric are the baselines (never the oracle: it knows the answer) and, for
  correlation, MSE, hedge and rank IC, the constant-mean predictor (``mean``, the skill
  column's reference: correlation 0, MSE the target's variance), so no model "beats" a
  baseline by being less wrong than a bad one.
- The headline verdict rests on the primary metric alone: "beats" when the lower bound of
  (model - best rival) stays above zero at one horizon, one-sided at 1 - ``FALSE_BEATS`` / H
  over the H horizons judged (Bonferroni: a 5 % chance of a false "beats"); "collapsed: no
  skill" whenever the score head collapsed, whatever the intervals say; "no evidence"
  otherwise. Hansen's SPA p-value of the model against the best rival on the primary
  metric's daily series stands beside it, widened as the intervals are
  (``core.market.overfitting.few_blocks_pvalue``).
- Two checks keep it from being confidently wrong. A horizon whose test period holds fewer
  than ``MIN_BLOCKS`` independent blocks is not judged ("too few independent periods"). A
  "beats" whose use's own figure says the opposite (the portfolio that trades the forecast
  has a Sharpe interval below 0) is no "beats": the verdict is "conflict" and says why.
- The other metrics are secondary lines, each a 95 % comparison in its own words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.config import Config
from core.market.baselines import BOUNDS
from core.market.metrics import daily_skill
from core.market.overfitting import superior_predictive_ability
from core.market.strategy import StrategyConfig
from core.market.uncertainty import (
    DRAWS,
    HIGHER_IS_BETTER,
    LEVEL,
    METRIC_NAMES,
    MIN_BLOCKS,
    block_length,
    bootstrap_draws,
    date_stats,
    ic_statistics,
    metric_intervals,
    metrics_of_draws,
    overlap_shortfall,
    paired_difference,
    too_few_periods,
)
from core.market.uses import (
    MIN_CROSS_SECTION,
    default_primary,
    use_conflicts,
    use_for,
    with_reasons,
)

MIN_RANK_IC_TICKERS = MIN_CROSS_SECTION
PRIMARY_METRICS = ("pearson", "rank_ic", "hedge")
NOT_BASELINES = ("model", *BOUNDS)
MEAN = "mean"
"""The constant-mean predictor: every row scored with the test target's mean."""
MEAN_RIVALS = ("pearson", "mse", "rank_ic", "hedge")
VERDICTS = ("beats", "conflict", "no evidence", "too few periods", "collapsed")
"""Every headline verdict, strongest claim first."""
FALSE_BEATS = 0.05
"""The headline's chance of saying "beats" for a model no better than its best rival: a
one-sided claim, family-wise over the horizons (Bonferroni), the same 5 % the sweep verdict
asks of its SPA p-value times the horizons. Each horizon's lower bound is one-sided at
1 - FALSE_BEATS / H: for two horizons the lower end of the 95 % interval shown beside it. On
1,000 null panels the rule said "beats" on 5.1 % (``python -m bench.spa_size --rho 0 --headline
--panels 1000``).
Until 2026-12-06 it asked for a two-sided 1 - 0.05 / H interval (a one-sided 2.5 %), which
made up for intervals that were too narrow; ``overlap_shortfall`` now widens them instead."""


def family_level(horizons: int) -> float:
    """The two-sided level whose interval's lower end is the headline's one-sided bound for
    ``horizons`` horizons: 0.95 for two, 0.90 for one."""
    return 1 - 2 * FALSE_BEATS / max(horizons, 1)


@dataclass
class EvaluationConfig(Config):
    primary: str = "auto"
    """The metric the headline verdict rests on, declared before anything is computed:
    'pearson' (correlation with the target), 'rank_ic' (mean daily rank IC against the
    forward return), 'hedge' (variance a hedge sized by a co-movement forecast removes), or
    'auto': the metric of the target's use (rank IC for a return target where the median
    test date has at least 20 tickers, correlation with fewer; hedge for relevance)."""
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    """The trading figures: costs in basis points, weighting, TopkDropout."""

    def validate(self) -> None:
        allowed = ("auto", *PRIMARY_METRICS)
        self.require("primary", self.primary in allowed, "'auto', 'pearson', 'rank_ic' or 'hedge'")


def declare_primary(config: EvaluationConfig, keys: pd.DataFrame, *, kind: str) -> dict[str, Any]:
    """The primary metric for test rows ``keys`` (date, ticker) of a target of ``kind``, why,
    and the use it measures (``core.market.uses``)."""
    tickers = int(keys.groupby("date")["ticker"].nunique().median()) if len(keys) else 0
    if config.primary != "auto":
        metric, reason = config.primary, "declared in the evaluation config"
    else:
        metric, reason = default_primary(kind, tickers)
    return {
        "metric": metric,
        "name": METRIC_NAMES[metric],
        "reason": reason,
        "tickers": tickers,
        "use": use_for(kind, metric).to_dict(),
    }


def sentence(
    metric: str,
    horizon: str,
    baseline: str,
    point: float,
    low: float,
    high: float,
    level: float = LEVEL,
) -> tuple[str, str]:
    """(verdict, one line): 'beats' / 'worse' / 'no evidence' and the sentence."""
    name = METRIC_NAMES[metric]
    days = f"{horizon.removesuffix('d')} days"
    shown = f"{level:.1%}".replace(".0%", "%")
    figures = f"difference {point:+.3f}, {shown} interval {low:+.3f}..{high:+.3f}"
    if low > 0:
        return "beats", f"the model beats {baseline} on {name} at {days}: {figures}"
    if high < 0:
        return "worse", f"the model is worse than {baseline} on {name} at {days}: {figures}"
    return "no evidence", f"no evidence the model beats {baseline} on {name} at {days}: {figures}"


def collapse_check(scored: pd.DataFrame, spec: Any, horizons: list[int]) -> dict[str, Any]:
    """A head that learned nothing, checked for every head at every horizon: near-constant
    scores (spread under 1 % of the target's), or one predicted class on more than 95 % of
    rows (whichever class it is: a class head stuck on a minority class has learned nothing
    either). ``scored`` holds the model's ``model_score_hd`` / ``model_class_hd`` beside the
    targets of the same rows. ``collapsed``: any head; ``score_collapsed``: a score head,
    which every primary metric reads (the headline says "collapsed" then); ``heads``: the
    reason per head ('score_7d', 'class_7d', ...) that collapsed."""
    heads: dict[str, str] = {}
    for h in horizons:
        score_column, _ = spec.target.columns(h)
        spread = float(np.std(scored[f"model_score_{h}d"].to_numpy(float)))
        target_spread = float(np.std(scored[score_column].to_numpy(float)))
        if spread < 0.01 * max(target_spread, 1e-12):
            heads[f"score_{h}d"] = (
                f"{h}-day scores are near constant (spread {spread:.4f} against the "
                f"target's {target_spread:.4f})"
            )
        predicted = scored[f"model_class_{h}d"].to_numpy(int)
        if len(predicted):
            counts = np.bincount(predicted, minlength=len(spec.target.class_names))
            top = int(counts.argmax())
            share = float(counts[top] / len(predicted))
            if share > 0.95:
                name = spec.target.class_names[top]
                heads[f"class_{h}d"] = f"the {h}-day class head predicts '{name}' on {share:.0%}"
    return {
        "collapsed": bool(heads),
        "score_collapsed": any(k.startswith("score_") for k in heads),
        "reasons": list(heads.values()),
        "heads": heads,
    }


def headline_verdict(
    primary: dict[str, Any],
    entries: list[dict[str, Any]],
    collapse: dict[str, Any],
    conflicts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """'collapsed', 'beats', 'conflict', 'too few periods' or 'no evidence', from the
    primary metric's comparisons (one per horizon, with family-wise bounds, the SPA p-value
    and whether enough independent blocks judge it), the collapse check, and ``conflicts``:
    per horizon, the sentence saying the use's own figure contradicts a lead there."""
    name = primary["name"]
    conflicts = conflicts or {}
    judged = [e for e in entries if e.get("judged", True)]
    count = len(judged)
    if collapse.get("score_collapsed", collapse["collapsed"]):
        reasons = collapse["reasons"]
        text = "collapsed: no skill (" + "; ".join(reasons) + ")"
        return {"verdict": "collapsed", "sentence": text, "comparisons": count}
    if not entries:
        return {"verdict": "no evidence", "sentence": "nothing to compare with", "comparisons": 0}
    unjudged = "; ".join(
        f"at {e['horizon'].removesuffix('d')} days {too_few_periods(e['blocks'])}"
        for e in entries
        if not e.get("judged", True)
    )
    if not judged:
        text = f"not judged on {name}, the primary metric: {unjudged}"
        return {"verdict": "too few periods", "sentence": text, "comparisons": 0}
    horizons = f"{count} horizon{'s' if count > 1 else ''}"
    bound = 1 - FALSE_BEATS / count
    also = f"; {unjudged}" if unjudged else ""

    def spa(entry: dict[str, Any]) -> str:
        p = entry["spa_pvalue"]
        counted = f", {min(1.0, p * count):.3f} for {horizons}" if count > 1 else ""
        return f"SPA p-value {p:.3f}{counted}"

    def lead(entry: dict[str, Any]) -> str:
        return (
            f"{entry['baseline']} on {name}, the primary metric, at "
            f"{entry['horizon'].removesuffix('d')} days: difference {entry['difference']:+.3f}, "
            f"above {entry['family_low']:+.3f} at one-sided {bound:.1%} ({horizons} at a "
            f"{FALSE_BEATS:.0%} chance of a false 'beats'; {spa(entry)})"
        )

    winners = [e for e in judged if e["family_low"] > 0]
    agreeing = [e for e in winners if e["horizon"] not in conflicts]
    if agreeing:
        best = max(agreeing, key=lambda e: e["family_low"])
        text = f"the model beats {lead(best)}{also}"
        return {"verdict": "beats", "sentence": text, "comparisons": count}
    if winners:
        best = max(winners, key=lambda e: e["family_low"])
        text = (
            f"conflict, so no 'beats': the model leads {lead(best)}, but "
            f"{conflicts[best['horizon']]}; the metric and its use disagree{also}"
        )
        return {"verdict": "conflict", "sentence": text, "comparisons": count}
    shown = "; ".join(
        f"at {e['horizon'].removesuffix('d')} days against {e['baseline']} "
        f"{e['difference']:+.3f} ({e['family_low']:+.3f}..{e['family_high']:+.3f}, {spa(e)})"
        for e in judged
    )
    text = (
        f"no evidence the model beats the best baseline on {name}, the primary metric: "
        f"{shown}{also}"
    )
    return {"verdict": "no evidence", "sentence": text, "comparisons": count}


def predictor_tables(
    spec: Any, predictors: dict[str, pd.DataFrame], rows: pd.DataFrame, h: int
) -> dict[str, pd.DataFrame]:
    """(date, score, target, predicted, actual, forward_return) per predictor at horizon h,
    and the constant-mean predictor's (``MEAN``) on the first predictor's rows."""
    score_column, class_column = spec.target.columns(h)
    truth = rows[["date", "ticker", score_column, class_column, f"fwd_return_{h}d"]]
    tables = {}
    for name, frame in predictors.items():
        predicted = frame[["date", "ticker", f"score_{h}d", f"class_{h}d"]].rename(
            columns={f"score_{h}d": "predicted_score", f"class_{h}d": "predicted_class"}
        )  # a label column may share the name class_hd
        joined = truth.merge(predicted, on=["date", "ticker"])
        tables[name] = pd.DataFrame(
            {
                "date": joined["date"],
                "score": joined["predicted_score"],
                "target": joined[score_column],
                "predicted": joined["predicted_class"].astype(int),
                "actual": joined[class_column].astype(int),
                "forward_return": joined[f"fwd_return_{h}d"],
            }
        )
    first = next(iter(tables.values()))
    majority = int(np.bincount(first["actual"].to_numpy(int)).argmax())
    tables[MEAN] = first.assign(score=first["target"].mean(), predicted=majority)
    return tables


def _judged_ic(figures: dict[str, float], judged: bool) -> dict[str, float]:
    """The IC's statistics, without its Newey-West t, p-value and interval over too few
    independent periods (a long-run variance from three blocks is a guess)."""
    if judged:
        return figures
    unknown = dict.fromkeys(("ic_t_nw", "ic_p_nw", "ic_low", "ic_high"), float("nan"))
    return {**figures, **unknown}


def uncertainty_report(
    spec: Any,
    predictors: dict[str, pd.DataFrame],
    rows: pd.DataFrame,
    reports: dict[str, dict[str, Any]],
    *,
    primary: dict[str, Any] | None = None,
    seed: int = 0,
    draws: int = DRAWS,
) -> dict[str, Any]:
    """Intervals for every predictor and metric, IC statistics, the model against the best
    rival on the primary metric (headline, family-wise over horizons, with SPA) and on each
    other metric (secondary), the collapse check and the verdict.

    ``predictors`` map names to (date, ticker, score_hd, class_hd) frames over the same test
    rows; ``rows`` are the outcomes (``core.market.predictions.outcomes``); ``reports`` their
    point figures (``score_report``); ``primary`` what ``declare_primary`` declared."""
    primary = primary or declare_primary(EvaluationConfig(), rows, kind=spec.target.kind)
    horizons = [int(k.removesuffix("d")) for k in reports["model"]]
    dates = np.sort(rows["date"].unique())
    classes = len(spec.target.class_names)
    blocks_at = {h: len(dates) / block_length(dates, h) for h in horizons}
    judged_count = sum(blocks >= MIN_BLOCKS for blocks in blocks_at.values())
    level = family_level(judged_count)
    sections: dict[str, Any] = {}
    headline: list[dict[str, Any]] = []
    for h in horizons:
        key = f"{h}d"
        sample = bootstrap_draws(dates, h, seed=seed, draws=draws)
        tables = predictor_tables(spec, predictors, rows, h)
        constant = {MEAN: True}
        for name in predictors:
            constant[name] = bool(reports[name][key]["regression"].get("constant", 0.0))
        stats = {
            n: date_stats(t, dates, classes=classes, constant=constant[n])
            for n, t in tables.items()
        }
        block = block_length(dates, h)
        blocks = blocks_at[h]
        judged = blocks >= MIN_BLOCKS
        shortfall = overlap_shortfall(dates, h)
        drawn = {n: metrics_of_draws(s, sample) for n, s in stats.items()}
        if spec.target.kind != "co-movement":  # a hedge is the use of a co-movement forecast
            for figures in drawn.values():
                figures.pop("hedge")
        shown = [n for n in tables if n != MEAN]
        unknown = [float("nan"), float("nan")]
        section: dict[str, Any] = {
            "block_dates": block,
            "blocks": blocks,
            "judged": judged,
            "draws": draws,
            "overlap_shortfall": shortfall,
            "intervals": {
                n: (
                    metric_intervals(drawn[n], blocks, shortfall=shortfall)
                    if judged
                    else dict.fromkeys(drawn[n], unknown)
                )
                for n in shown
            },
            "rank_ic": {
                n: _judged_ic(ic_statistics(stats[n].rank_ic, block), judged) for n in shown
            },
            "comparisons": [],
        }
        for metric, higher in HIGHER_IS_BETTER.items():
            if metric not in drawn["model"]:
                continue
            rivals = [n for n in tables if n not in NOT_BASELINES]
            if metric not in MEAN_RIVALS:
                rivals.remove(MEAN)
            scored = [(drawn[n][metric][0], n) for n in rivals if np.isfinite(drawn[n][metric][0])]
            mine = drawn["model"][metric][0]
            if not scored or not np.isfinite(mine):
                continue
            best_value, best = max(scored) if higher else min(scored)
            gain = float(mine - best_value if higher else best_value - mine)
            is_primary = metric == primary["metric"]
            shown_level = level if is_primary else LEVEL  # the primary line shows the headline's
            ordinary = paired_difference(
                drawn["model"], drawn[best], metric, blocks, shown_level, shortfall=shortfall
            )
            verdict, text = sentence(
                metric, key, best, gain, ordinary["low"], ordinary["high"], shown_level
            )
            if not judged:
                verdict = "too few periods"
                text = f"{METRIC_NAMES[metric]} at {h} days: {too_few_periods(blocks)}"
                ordinary = {"low": float("nan"), "high": float("nan")}
            entry = {
                "metric": metric,
                "horizon": key,
                "baseline": best,
                "difference": gain,
                "low": ordinary["low"],
                "high": ordinary["high"],
                "role": "primary" if is_primary else "secondary",
                "verdict": verdict,
                "sentence": text,
            }
            if is_primary:
                skill = {
                    n: daily_skill(tables[n], metric, constant=constant[n]) for n in ("model", best)
                }
                spa = superior_predictive_ability(
                    -skill[best].to_numpy(),
                    -skill["model"].to_numpy(),
                    block=block,
                    shortfall=shortfall,
                    seed=seed,
                )
                entry.update(
                    family_low=ordinary["low"],
                    family_high=ordinary["high"],
                    family_level=level,
                    horizons_counted=judged_count,
                    judged=judged,
                    blocks=blocks,
                    spa_pvalue=spa["consistent"],
                )
                section["primary"] = entry
                headline.append(entry)
            section["comparisons"].append(entry)
        sections[key] = section
    model = predictors["model"]
    collapse = collapse_check(
        model.rename(columns=lambda c: c if c in ("date", "ticker") else f"model_{c}").merge(
            rows, on=["date", "ticker"]
        ),
        spec,
        horizons,
    )
    return {
        "level": LEVEL,
        "method": "circular block bootstrap over test dates, blocks at least two horizons",
        "primary": primary,
        "horizons": sections,
        "verdict": with_reasons(
            headline_verdict(primary, headline, collapse, use_conflicts(primary, reports["model"])),
            primary,
            sections,
        ),
        "collapse": collapse,
    }
