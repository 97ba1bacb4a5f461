"""The runs table: one row per run with what an analyst sorts and filters on (name, model,
dataset, target, job kind, status, duration, the primary metric with its interval, the
verdict, tags), and the names and tags users give runs. The Evaluate page's entry, Home's
recent runs and `trendlab runs list` read it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from services import catalog
from services.access import ensure_writable
from services.catalog import RunInfo
from services.jobs.progress import format_duration
from storage.db import StorageError
from storage.repository import get_run, label_run, session_scope

COLUMNS = (
    "run",
    "name",
    "model",
    "dataset",
    "target",
    "kind",
    "status",
    "duration",
    "primary",
    "verdict",
    "tags",
)
NAME_LIMIT = 80
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}")
"""A tag: a letter or digit, then up to 39 letters, digits, '_', '.', ':' or '-'."""
KINDS = {
    "train": "training",
    "train_recommender": "training",
    "walk_forward": "walk-forward",
    "retrain": "retrain",
}


def runs_table(*, engine: Engine, runs: Iterable[RunInfo] | None = None) -> pd.DataFrame:
    """One row per run (newest first), every cell text or a number: never None."""
    runs = list(catalog.runs(engine=engine) if runs is None else runs)
    kinds = {job.run_id: job.kind for job in catalog.jobs(engine=engine) if job.run_id}
    rows = [_row(run, kinds.get(run.id)) for run in runs]
    return pd.DataFrame(rows, columns=[*COLUMNS, "collapsed"])


def _row(run: RunInfo, job_kind: str | None) -> dict[str, Any]:
    summary = run.summary
    duration = ""
    if run.started_at and run.finished_at:
        duration = format_duration((run.finished_at - run.started_at).total_seconds())
    kind = KINDS.get(job_kind or "", job_kind or "command line")
    if "window" in run.config:
        kind = "walk-forward fold"
    elif "experiment" in run.config:
        kind = f"{kind}, experiment seed"
    return {
        "run": run.id,
        "name": run.name or "",
        "model": run.model,
        "dataset": run.dataset or "",
        "target": run.target,
        "kind": kind,
        "status": run.status,
        "duration": duration,
        "primary": run.primary,
        "verdict": str(summary.get("verdict") or ""),
        "tags": ", ".join(run.tags),
        "collapsed": bool(summary.get("collapsed")),
    }


def filtered(table: pd.DataFrame, text: str = "", tags: Iterable[str] = ()) -> pd.DataFrame:
    """Rows whose name, model, dataset, target, kind, status or verdict holds ``text``
    (case-insensitive) and that carry every tag in ``tags``."""
    keep = pd.Series(True, index=table.index)
    if text.strip():
        searched = table[["name", "model", "dataset", "target", "kind", "status", "verdict"]]
        joined = searched.astype(str).agg(" ".join, axis=1).str.lower()
        keep &= joined.str.contains(text.strip().lower(), regex=False)
    for tag in tags:
        keep &= table["tags"].map(lambda cell, tag=tag: tag in cell.split(", "))
    return table[keep]


def check_labels(name: str | None, tags: Iterable[str]) -> list[str]:
    """Refuse a name or tag the table cannot show: a sentence naming it."""
    if name is not None and len(name) > NAME_LIMIT:
        raise ValueError(f"a run name has at most {NAME_LIMIT} characters, not {len(name)}")
    checked = []
    for tag in tags:
        if not TAG.fullmatch(tag):
            raise ValueError(
                f"tag {tag[:60]!r}: a letter or digit, then up to 39 letters, digits, "
                "'_', '.', ':' or '-'"
            )
        checked.append(tag)
    return checked


def label(
    *,
    engine: Engine,
    run_id: int,
    name: str | None = None,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
) -> dict[str, Any]:
    """Name a run (an empty name clears it), add and remove tags; its name and tags after."""
    ensure_writable("naming and tagging runs")
    added = check_labels(name, add)
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=run_id)
        if run is None:
            raise StorageError(f"No run {run_id}.")
        tags = (set(run.tags or []) | set(added)) - set(remove)
        run = label_run(session=session, run_id=run_id, name=name, tags=sorted(tags))
        return {"run_id": run.id, "name": run.name or "", "tags": list(run.tags)}
