"""Verdicts over many tries, from stored runs: a sweep's trials against the baselines
(deflated Sharpe, PBO, SPA: ``core.market.tries``), and the runs of the Comparison view side
by side (model confidence set, Diebold-Mariano: ``core.market.overfitting``).

Every trial's test predictions are the ones its run kept when training ended; the baselines
are fit once, on the training rows of the first run (a sweep's trials share the dataset, the
split and the seed, so they share the test rows too).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from core.market.baselines import RIVALS
from core.market.metrics import daily_skill, regression_metrics
from core.market.overfitting import diebold_mariano, model_confidence_set
from core.market.predictions import baseline_predictions, horizons_in, outcomes
from core.market.tries import tries_report
from core.market.uncertainty import block_length
from core.market.verdict import MEAN, EvaluationConfig, declare_primary, predictor_tables
from services.market.evaluation import _restore, load_evaluation
from services.sweeps.study import sweep_info
from storage.data_home import DataHome
from storage.db import StorageError


def _trial_predictions(engine: Engine, run_ids: list[int]) -> dict[str, pd.DataFrame]:
    """'run N' -> the run's (date, ticker, score_hd, class_hd) on the rows all runs share."""
    frames = {
        f"run {r}": load_evaluation(engine=engine, run_id=r).predictor("model") for r in run_ids
    }
    keys = next(iter(frames.values()))[["date", "ticker"]]
    for frame in frames.values():
        keys = keys.merge(frame[["date", "ticker"]], on=["date", "ticker"])
    if keys.empty:
        raise StorageError("These runs share no test rows: they were tested on different data.")
    return {name: keys.merge(frame, on=["date", "ticker"]) for name, frame in frames.items()}


def runs_tries(
    *,
    engine: Engine,
    run_ids: list[int],
    config: EvaluationConfig | None = None,
    baselines: tuple[str, ...] = RIVALS,
) -> dict[str, Any]:
    """DSR, PBO, SPA and the verdict of the runs as trials of one search, against the
    ``baselines`` fit on the first run's training rows."""
    config = config or EvaluationConfig()
    trials = _trial_predictions(engine, run_ids)
    keys = next(iter(trials.values()))[["date", "ticker"]]
    first = _restore(engine, run_ids[0])
    spec = first.restored.spec
    rivals = baseline_predictions(
        spec,
        first.frame,
        first.restored.loaders,
        seed=first.restored.training.seed,
        names=baselines,
    )
    rivals = {n: keys.merge(frame, on=["date", "ticker"]) for n, frame in rivals.items()}
    rows = outcomes(spec, first.frame, next(iter(trials.values())))
    primary = declare_primary(config, keys, kind=spec.target.kind)
    report = tries_report(
        spec, trials, rivals, rows, primary=primary, strategy=config.strategy, seed=0
    )
    return {"run_ids": run_ids, **report}


def sweep_tries(
    *, engine: Engine, home: DataHome, sweep_id: int, config: EvaluationConfig | None = None
) -> dict[str, Any]:
    """``runs_tries`` over every completed trial of a sweep, with the sweep's own best (the
    lowest validation loss, chosen before any test figure)."""
    info = sweep_info(engine=engine, home=home, sweep_id=sweep_id)
    if info is None:
        raise StorageError(f"No sweep {sweep_id}.")
    done = [t for t in info.results if t.state in ("complete", "pruned") and t.run_id]
    if not done:
        raise StorageError(f"Sweep {sweep_id} has no finished trial with a test evaluation.")
    report = runs_tries(engine=engine, run_ids=[t.run_id for t in done], config=config)
    best = info.best
    return {
        "sweep_id": sweep_id,
        "model": info.model,
        "dataset": info.dataset,
        "trial_of_run": {f"run {t.run_id}": t.number for t in done},
        "best_by_validation": f"run {best.run_id}" if best else None,
        **report,
    }


def compare_runs(
    *, engine: Engine, run_ids: list[int], config: EvaluationConfig | None = None
) -> dict[str, Any]:
    """Per horizon, on the test rows the runs share: the model confidence set (90 %) of the
    runs on the primary metric's daily loss, and the Diebold-Mariano test of the first two."""
    config = config or EvaluationConfig()
    trials = _trial_predictions(engine, run_ids)
    keys = next(iter(trials.values()))[["date", "ticker"]]
    first = _restore(engine, run_ids[0])
    spec = first.restored.spec
    rows = outcomes(spec, first.frame, next(iter(trials.values())))
    primary = declare_primary(config, keys, kind=spec.target.kind)
    sections = {}
    for h in horizons_in(next(iter(trials.values()))):
        tables = predictor_tables(spec, trials, rows, h)
        tables.pop(MEAN)
        losses = pd.DataFrame(
            {
                name: -daily_skill(
                    table,
                    primary["metric"],
                    constant=bool(regression_metrics(table["score"], table["target"])["constant"]),
                )
                for name, table in tables.items()
            }
        ).fillna(0.0)
        dates = np.sort(rows["date"].unique())
        block = block_length(dates, h)
        a, b = losses.columns[:2]
        sections[f"{h}d"] = {
            "mcs": model_confidence_set(losses, block=block),
            "diebold_mariano": {
                "runs": [a, b],
                **diebold_mariano(losses[a], losses[b], lags=block),
            },
            "mean_skill": {name: float(-losses[name].mean()) for name in losses},
        }
    return {"run_ids": run_ids, "primary": primary, "horizons": sections}


def comparison_lines(report: dict[str, Any]) -> list[str]:
    """The comparison in words, one line per horizon: who is in the confidence set, and
    the Diebold-Mariano test of the first two runs."""
    name = report["primary"]["name"]
    lines = []
    for horizon, section in report["horizons"].items():
        mcs, dm = section["mcs"], section["diebold_mariano"]
        kept = ", ".join(mcs["included"])
        dropped = ", ".join(mcs["excluded"]) or "none"
        a, b = dm["runs"]
        better = a if dm["mean_differential"] < 0 else b
        said = (
            f"{better} is better (p {dm['pvalue']:.3f})"
            if dm["pvalue"] < 0.05
            else f"no evidence either is better (p {dm['pvalue']:.3f})"
        )
        lines.append(
            f"At {horizon.removesuffix('d')} days, on daily {name}: the 90% model confidence "
            f"set holds {kept} (excluded: {dropped}); Diebold-Mariano {a} against {b}: "
            f"statistic {dm['statistic']:+.2f}, {said}."
        )
    return lines
