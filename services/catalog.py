"""What the data home holds, as plain values: datasets, runs, jobs and their files.

Pages, the CLI and the API read these frozen dataclasses instead of ORM rows, so none of them
holds a database session or depends on the schema's column names. Every function opens and
closes its own session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from core.recsys.synthetic import RecsysData
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
