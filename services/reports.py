"""Read-only views over runs for the dashboard: one table of runs, and their epoch curves."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Engine

from core.config import flatten
from storage.repository import get_dataset_by_id, get_run, list_metrics, session_scope

HEADLINE = ("pearson", "mse", "direction_accuracy", "macro_f1", "rank_ic", "oracle_pearson")


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


def epoch_curves(*, engine: Engine, run_ids: Sequence[int]) -> pd.DataFrame:
    """Every epoch metric of the runs: run, epoch, split, name, value."""
    with session_scope(engine) as session:
        rows = [
            {"run": run_id, "epoch": m.epoch, "split": m.split, "name": m.name, "value": m.value}
            for run_id in run_ids
            for m in list_metrics(session=session, run_id=run_id)
        ]
    return pd.DataFrame(rows, columns=["run", "epoch", "split", "name", "value"])
