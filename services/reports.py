"""Read-only views over runs for the dashboard: one table of runs, and their epoch curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from core.config import flatten
from core.market.baselines import HEDGE_RIVAL
from core.market.uncertainty import METRIC_NAMES, too_few_periods
from services.catalog import RunInfo
from storage.repository import get_dataset_by_id, get_run, list_metrics, session_scope

HEADLINE = (
    "pearson",
    "pearson_low",
    "pearson_high",
    "mse",
    "direction_accuracy",
    "macro_f1",
    "rank_ic",
    "rank_ic_low",
    "rank_ic_high",
    "oracle_pearson",
)


def run_overview(*, engine: Engine, run_ids: Sequence[int]) -> pd.DataFrame:
    """One row per run: model, dataset, status, epochs, the test headline per horizon
    ("7d pearson", ...) and every config value ("training.optimizer.base_learning_rate")."""
    rows = []
    with session_scope(engine) as session:
        for run_id in run_ids:
            run = get_run(session=session, run_id=run_id)
            if run is None:
                continue
            dataset = get_dataset_by_id(session=session, dataset_id=run.dataset_id)
            summary = run.summary_metrics or {}
            row = {
                "run": run.id,
                "model": run.model_kind,
                "dataset": dataset.name if dataset else None,
                "status": run.status,
                "epochs": summary.get("epochs"),
                "best epoch": summary.get("best_epoch"),
            }
            for horizon, figures in summary.get("test", {}).items():
                for name in HEADLINE:
                    if isinstance(figures.get(name), int | float):
                        row[f"{horizon} {name}"] = figures[name]
            config = {k: v for k, v in run.config.items() if k in ("model", "training")}
            row.update(flatten(config))
            rows.append(row)
    return pd.DataFrame(rows)


def settings_diff(overview: pd.DataFrame) -> pd.DataFrame:
    """The settings that differ between the runs of ``run_overview``: one row per setting
    ("training.batch_size"), one column per run ("run 3"); empty when they train alike."""
    settings = [c for c in overview.columns if str(c).startswith(("model.", "training."))]
    differing = [c for c in settings if overview[c].astype(str).nunique(dropna=False) > 1]
    table = overview.set_index("run")[differing].T.astype(str)
    table.columns = [f"run {run}" for run in table.columns]
    return table.rename_axis("setting").reset_index()


def epoch_curves(*, engine: Engine, run_ids: Sequence[int]) -> pd.DataFrame:
    """Every epoch metric of the runs: run, epoch, split, name, value."""
    with session_scope(engine) as session:
        rows = [
            {"run": run_id, "epoch": m.epoch, "split": m.split, "name": m.name, "value": m.value}
            for run_id in run_ids
            for m in list_metrics(session=session, run_id=run_id)
        ]
    return pd.DataFrame(rows, columns=["run", "epoch", "split", "name", "value"])


FLAT_ACCURACY = 0.01
"""A class accuracy that moves less than this over a run's epochs has not moved."""


def flat_accuracy_notes(curves: pd.DataFrame, classes: int = 3) -> list[str]:
    """Why a validation class accuracy that never moves is worth a word: one sentence per
    horizon whose ``acc_Hd`` stayed within ``FLAT_ACCURACY`` over three epochs or more.
    ``curves`` is one run's ``epoch_curves``."""
    notes = []
    validation = curves[(curves["split"] == "val") & curves["name"].str.match(r"acc_\d+d$")]
    for name, rows in validation.groupby("name", sort=False):
        values = rows.sort_values("epoch")["value"]
        if len(values) < 3 or values.max() - values.min() >= FLAT_ACCURACY:
            continue
        horizon = name.removeprefix("acc_")
        notes.append(
            f"The {horizon} class accuracy stayed at {values.iloc[-1]:.2f} over all "
            f"{len(values)} epochs. With {classes} classes of about equal size (the labels cut "
            f"the returns into thirds), {1 / classes:.2f} is what one class predicted for "
            "every row scores: the class head has not learned to tell the classes apart. "
            "Training stops on the validation loss, which the score head drives; Evaluate "
            "says whether the class head collapsed onto one class."
        )
    return notes


def evaluation_summary(report: dict[str, Any], run: RunInfo | None) -> list[str]:
    """A run's evaluation in words, for the top of the Evaluate page: what was trained on
    what, the headline figure against the best baseline with its interval, the verdict, and
    a warning when the model collapsed. Markdown, one paragraph per item."""
    target = report.get("targets", "")
    trained = f"**Run {run.id}** trained **{report['model']}**" if run else report["model"]
    on = f" on **{run.dataset}**" if run and run.dataset else ""
    lines = [f"{trained}{on} ({target} targets); {report['test_rows']:,} test rows."]
    judged = report.get("uncertainty")
    if not judged:
        lines.append("This evaluation predates intervals and verdicts; retrain to get them.")
        return lines
    primary = judged.get("primary")
    if primary:
        lines.append(
            f"The verdict rests on **{primary['name']}**, the primary metric declared before "
            f"evaluation ({primary['reason']}); the other metrics are secondary."
        )
        if primary.get("use"):
            lines.append(f"**What it is for:** {primary['use']['sentence']}")
    metric = primary["metric"] if primary else "pearson"
    for horizon, section in judged["horizons"].items():
        headline = section.get("primary") or next(
            (c for c in section["comparisons"] if c["metric"] == metric), None
        )
        if headline is None:
            continue
        days = horizon.removesuffix("d")
        if not section.get("judged", True):
            lines.append(
                f"At {days} days: {too_few_periods(section['blocks'])} (the test period holds "
                f"{section['blocks']:.1f} blocks of {section['block_dates']} dates); no interval "
                f"is shown. Point difference against {headline['baseline']}: "
                f"{headline['difference']:+.3f}."
            )
        else:
            model = section["intervals"]["model"][metric]
            spa = headline.get("spa_pvalue")
            level = f"{headline.get('family_level', 0.95):.1%}".replace(".0%", "%")
            lines.append(
                f"At {days} days, against the best rival on {METRIC_NAMES[metric]} "
                f"({headline['baseline']}): difference {headline['difference']:+.3f} ({level} "
                f"interval {headline['low']:+.3f}..{headline['high']:+.3f}); the model's own "
                f"95% interval {model[0]:+.3f}..{model[1]:+.3f}"
                + (f"; SPA p-value {spa:.3f}." if spa is not None else ".")
            )
        lines.extend(_use_line(report, horizon))
    lines.append(f"**Verdict:** {judged['verdict']['sentence']}.")
    unjudged = [h for h, section in judged["horizons"].items() if not section.get("judged", True)]
    if unjudged and run is not None:
        lines.append(
            f"To judge {', '.join(unjudged)} over the whole history, evaluate it walk-forward: "
            f"`trendlab evaluate {run.id} --walk-forward 5`, or the walk-forward job below "
            "(each fold retrains on the dates before its block; the folds' out-of-sample "
            "predictions are judged together)."
        )
    collapse = judged["collapse"]
    if collapse.get("score_collapsed", collapse["collapsed"]):
        lines.append(
            "**Collapsed:** " + "; ".join(collapse["reasons"]) + ". Its figures "
            "describe a near-constant predictor, not learned skill."
        )
    elif collapse["collapsed"]:
        lines.append(
            "**Collapsed head:** " + "; ".join(collapse["reasons"]) + ". The verdict reads the "
            "score, which did not collapse; the class head has learned nothing."
        )
    return lines


def _use_line(report: dict[str, Any], horizon: str) -> list[str]:
    """What the use earns at one horizon: the portfolio that trades the forecast, or the
    variance a hedge sized by it removes beside persistence's."""
    days = horizon.removesuffix("d")
    section = report["reports"]["model"][horizon]
    finance = section["finance"]
    if "hedge" in section:
        rival = report["reports"].get(HEDGE_RIVAL, {}).get(horizon, {}).get("hedge")
        beside = f" ({HEDGE_RIVAL}: {rival:.1%})" if rival is not None else ""
        return [
            f"Hedging with it at {days} days: a hedge sized by the forecast removes "
            f"{section['hedge']:.1%} of a position's variance on average{beside}. No profit "
            "and loss is shown: a co-movement forecast does not say which stock will rise."
        ]
    for kind, what in (
        ("market_neutral", "market-neutral long/short on the day's order"),
        ("time_series", "each ticker long or short by its own score"),
    ):
        if kind in finance:
            traded = finance[kind]
            bounds = (
                f"95% interval {traded['sharpe_low']:+.2f}..{traded['sharpe_high']:+.2f}"
                if np.isfinite(traded["sharpe_low"])
                else "too few independent periods for an interval"
            )
            excess = finance.get("long_only")
            also = (
                f"; long-only excess over equal weight {excess['net_return']:+.2%}"
                if excess
                else ""
            )
            return [
                f"Trading it at {days} days ({what}) after {finance['cost_bps']:g} bp costs: "
                f"Sharpe {traded['sharpe']:+.2f} ({bounds}), net return "
                f"{traded['net_return']:+.2%} at turnover {traded['turnover']:.2f} a day{also}."
            ]
    return []
