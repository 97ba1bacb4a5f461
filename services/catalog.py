"""What the data home holds, as plain values: datasets, runs, jobs and their files; and the
JSON-ready views the read-only CLI commands print.

Pages, the CLI and the API read these frozen dataclasses instead of ORM rows, so none of them
holds a database session or depends on the schema's column names. Every function opens and
closes its own session. The views (``DatasetInfo.facts``, ``RunInfo.facts``,
``dataset_details``, ``run_details``, ``info``) are built here once, so the CLI gives the same
answer from the database and, while a server holds the DuckDB file, from that server's API
(which answers with these very dicts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from core.recsys.synthetic import RecsysData
from storage.data_home import DataHome
from storage.db import StorageError, schema_version
from storage.feature_store import load_dataset_frame
from storage.models import Artifact, Dataset, Job, JobStatus, Run, utcnow
from storage.recsys import load_recsys_data
from storage.repository import (
    RECOMMENDER_KIND,
    count_rows,
    get_dataset,
    get_dataset_by_id,
    get_job,
    get_run,
    list_artifacts,
    list_datasets,
    list_jobs,
    list_runs,
    list_runs_with_artifact,
    session_scope,
)

__all__ = [
    "ArtifactInfo",
    "DatasetInfo",
    "JobInfo",
    "JobStatus",
    "RunInfo",
    "StorageError",
    "artifacts",
    "dataset",
    "dataset_frame",
    "datasets",
    "job",
    "jobs",
    "overview",
    "run",
    "runs",
    "runs_with_checkpoint",
]


@dataclass(frozen=True)
class DatasetInfo:
    """A stored dataset: market rows (features and labels) or recommender tables."""

    id: int
    name: str
    kind: str
    source: str
    tickers: list[str]
    start_date: dt.date | None
    end_date: dt.date | None
    features: list[str]
    row_count: int
    content_hash: str
    """Hash of the rows and recipe: how an identical build is found and reused."""
    recipe: dict[str, Any]
    created_at: dt.datetime

    @property
    def recommender(self) -> bool:
        return self.kind == RECOMMENDER_KIND

    def facts(self) -> dict[str, Any]:
        """What ``trendlab data list`` prints of it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "rows": self.row_count,
            "tickers": self.tickers,
            "start": str(self.start_date),
            "end": str(self.end_date),
            "created": self.created_at.isoformat(timespec="seconds"),
        }

    @classmethod
    def of(cls, row: Dataset) -> DatasetInfo:
        return cls(
            id=row.id,
            name=row.name,
            kind=row.kind,
            source=row.source,
            tickers=list(row.tickers or []),
            start_date=row.start_date,
            end_date=row.end_date,
            features=list(row.features or []),
            row_count=row.row_count,
            content_hash=row.content_hash,
            recipe=dict(row.recipe or {}),
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class RunInfo:
    """A training run: what was trained on what, its status and its summary figures."""

    id: int
    model: str
    dataset: str | None
    dataset_id: int | None
    status: str
    seed: int
    config: dict[str, Any]
    summary: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    parent_run_id: int | None
    name: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        """What the run predicts, as its summary records it ('relevance', 'trend',
        'recommendations'), or its model config's target for runs of earlier versions; ''."""
        recorded = self.summary.get("target")
        if recorded:
            return str(recorded)
        model = self.config.get("model")
        return str(model.get("target") or "") if isinstance(model, dict) else ""

    @property
    def primary(self) -> str:
        """The primary test metric with its 95 % interval, "0.031 (0.012..0.050) rank_ic 7d";
        a recommender's NDCG@10 the same way; "" before a test figure exists."""
        test = self.summary.get("test") or {}
        if not isinstance(test, dict) or not test:
            return ""
        primary = self.summary.get("primary") or {}
        first = next(iter(test.values()))
        if isinstance(first, dict):  # a market run: figures per horizon, the shortest first
            horizon, figures = next(iter(test.items()))
            metric = primary.get("metric") or next(
                (m for m in ("rank_ic", "pearson") if f"{m}_low" in figures), "pearson"
            )
            return _with_interval(figures, metric, f" {metric} {horizon}")
        metric = "ndcg@10" if "ndcg@10" in test else next(iter(test))
        return _with_interval({**test, **self.summary.get("interval", {})}, metric, f" {metric}")

    def facts(self) -> dict[str, Any]:
        """What ``trendlab runs list`` prints of it."""
        return {
            "run_id": self.id,
            "name": self.name or "",
            "model": self.model,
            "dataset": self.dataset or "",
            "target": self.target,
            "status": self.status,
            "seed": self.seed,
            "created": self.created_at.isoformat(timespec="seconds"),
            "test": self.summary.get("test", {}),
            "primary": self.primary,
            "verdict": self.summary.get("verdict") or "",
            "tags": list(self.tags),
        }

    @classmethod
    def of(cls, row: Run, dataset: str | None) -> RunInfo:
        return cls(
            id=row.id,
            model=row.model_kind,
            dataset=dataset,
            dataset_id=row.dataset_id,
            status=row.status,
            seed=row.seed,
            config=dict(row.config or {}),
            summary=dict(row.summary_metrics or {}),
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            parent_run_id=row.parent_run_id,
            name=row.name,
            tags=tuple(row.tags or ()),
        )


@dataclass(frozen=True)
class JobInfo:
    """A background job and where it stands."""

    id: int
    kind: str
    run_id: int | None
    status: str
    pid: int | None
    progress: dict[str, Any]
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    request: dict[str, Any] = field(default_factory=dict)
    """What it was asked to do at submit (device, folds, resume_from)."""

    @property
    def running(self) -> bool:
        return self.status == JobStatus.RUNNING

    @property
    def finished(self) -> bool:
        return JobStatus(self.status).finished

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (to now while it runs); None before it starts."""
        if self.started_at is None:
            return None
        return ((self.finished_at or utcnow()) - self.started_at).total_seconds()

    @classmethod
    def of(cls, row: Job) -> JobInfo:
        return cls(
            id=row.id,
            kind=row.kind,
            run_id=row.run_id,
            status=row.status,
            pid=row.pid,
            progress=dict(row.progress or {}),
            error=row.error,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            request=dict(row.request or {}),
        )


@dataclass(frozen=True)
class ArtifactInfo:
    """A file a run wrote, as recorded (size and SHA-256 when it was written)."""

    run_id: int
    kind: str
    path: Path
    bytes: int
    sha256: str

    @classmethod
    def of(cls, row: Artifact) -> ArtifactInfo:
        return cls(row.run_id, row.kind, Path(row.path), row.bytes, row.sha256)


def _with_interval(figures: dict[str, Any], metric: str, suffix: str) -> str:
    value = figures.get(metric)
    if not isinstance(value, int | float):
        return ""
    low, high = figures.get(f"{metric}_low"), figures.get(f"{metric}_high")
    if isinstance(low, int | float) and isinstance(high, int | float):
        return f"{value:.3f} ({low:.3f}..{high:.3f}){suffix}"
    return f"{value:.3f}{suffix}"


def datasets(*, engine: Engine, recommender: bool | None = None) -> list[DatasetInfo]:
    """Stored datasets, newest first; only recommender (or only market) ones when asked."""
    with session_scope(engine) as session:
        return [DatasetInfo.of(d) for d in list_datasets(session=session, recommender=recommender)]


def dataset(*, engine: Engine, name: str) -> DatasetInfo | None:
    with session_scope(engine) as session:
        row = get_dataset(session=session, name=name)
        return DatasetInfo.of(row) if row else None


def dataset_frame(*, engine: Engine, name: str, single: bool = False) -> pd.DataFrame:
    """A market dataset's rows (features, masks, labels, raw OHLCV); ``single``: float
    columns as float32, as training reads them."""
    with session_scope(engine) as session:
        return load_dataset_frame(session=session, name=name, single=single)


def recsys_data(*, engine: Engine, name: str) -> RecsysData:
    """A recommender dataset's users, items and interactions."""
    with session_scope(engine) as session:
        return load_recsys_data(session=session, name=name)


def _dataset_names(session: Any, rows: list[Run]) -> dict[int, str]:
    ids = {r.dataset_id for r in rows if r.dataset_id is not None}
    found = {i: get_dataset_by_id(session=session, dataset_id=i) for i in ids}
    return {i: d.name for i, d in found.items() if d is not None}


def runs(*, engine: Engine, model: str | None = None) -> list[RunInfo]:
    """Runs, newest first, optionally of one model."""
    with session_scope(engine) as session:
        rows = list_runs(session=session, model_kind=model)
        names = _dataset_names(session, rows)
        return [RunInfo.of(r, names.get(r.dataset_id)) for r in rows]


def run(*, engine: Engine, run_id: int) -> RunInfo | None:
    with session_scope(engine) as session:
        row = get_run(session=session, run_id=run_id)
        if row is None:
            return None
        return RunInfo.of(row, _dataset_names(session, [row]).get(row.dataset_id))


def runs_with_checkpoint(*, engine: Engine) -> list[RunInfo]:
    """Runs that recorded a checkpoint, newest first (what Predict and Evaluate can open)."""
    with session_scope(engine) as session:
        rows = list_runs_with_artifact(session=session, kind="checkpoint")
        names = _dataset_names(session, rows)
        return [RunInfo.of(r, names.get(r.dataset_id)) for r in rows]


def artifacts(*, engine: Engine, run_id: int) -> list[ArtifactInfo]:
    with session_scope(engine) as session:
        return [ArtifactInfo.of(a) for a in list_artifacts(session=session, run_id=run_id)]


def jobs(*, engine: Engine, kind: str | None = None) -> list[JobInfo]:
    """Jobs, newest first, optionally of one kind."""
    with session_scope(engine) as session:
        return [JobInfo.of(j) for j in list_jobs(session=session) if kind is None or j.kind == kind]


def job(*, engine: Engine, job_id: int) -> JobInfo | None:
    with session_scope(engine) as session:
        row = get_job(session=session, job_id=job_id)
        return JobInfo.of(row) if row else None


def schema(*, engine: Engine) -> int:
    """The database's schema version."""
    return schema_version(engine)


def overview(*, engine: Engine) -> dict[str, int]:
    """How many datasets, runs and jobs are stored, and the schema version."""
    with session_scope(engine) as session:
        counts = count_rows(session=session)
    return {**counts, "schema_version": schema_version(engine)}


def dataset_details(*, engine: Engine, name: str) -> dict[str, Any] | None:
    """One dataset's facts with its features count, hash and recipe; None when unknown."""
    found = dataset(engine=engine, name=name)
    if found is None:
        return None
    return {
        **found.facts(),
        "features": len(found.features),
        "content_hash": found.content_hash,
        "recipe": found.recipe,
    }


def run_details(*, engine: Engine, run_id: int) -> dict[str, Any] | None:
    """One run: status, configs, summary and recorded files; None when unknown."""
    found = run(engine=engine, run_id=run_id)
    if found is None:
        return None
    return {
        "run_id": found.id,
        "model": found.model,
        "status": found.status,
        "seed": found.seed,
        "dataset_id": found.dataset_id,
        "created": found.created_at.isoformat(timespec="seconds"),
        "summary": found.summary,
        "config": found.config,
        "artifacts": [
            {"kind": a.kind, "path": str(a.path), "bytes": a.bytes, "sha256": a.sha256}
            for a in artifacts(engine=engine, run_id=run_id)
        ],
    }


def info(*, home: DataHome, engine: Engine) -> dict[str, Any]:
    """Where the data home and database are (no password), and what the database holds."""
    counts = overview(engine=engine)
    return {
        "data_home": str(home.root),
        "database_url": make_url(home.database_url).render_as_string(hide_password=True),
        "schema_version": counts.pop("schema_version"),
        **counts,
    }
