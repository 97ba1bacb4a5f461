"""Keyword-only repository functions, one verb each, over a session the caller opens.

Typical use::

    with session_scope(engine) as session:
        run = create_run(session=session, model_kind="dual_tower", config={...}, seed=1)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.files import file_sha256
from storage.db import StorageError
from storage.models import (
    Artifact,
    Dataset,
    Forecast,
    Job,
    JobStatus,
    Run,
    RunMetric,
    Setting,
    utcnow,
)
from storage.tables import drop_tables

T = TypeVar("T")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    Objects stay readable after the block (``expire_on_commit=False``).
    """
    with sessionmaker(engine, expire_on_commit=False)() as session, session.begin():
        yield session


MAX_NAME_LENGTH = 64


def check_dataset_name(name: str) -> str:
    """``name`` when it is a usable dataset name (1-64 printable characters, no line breaks
    or tabs, no spaces at either end: it prints on one line in every table and menu);
    StorageError saying what is wrong otherwise."""
    usable = (
        isinstance(name, str)
        and 0 < len(name) <= MAX_NAME_LENGTH
        and name.isprintable()
        and name == name.strip()
    )
    if not usable:
        shown = repr(name) if len(str(name)) <= 40 else repr(str(name)[:40]) + "..."
        raise StorageError(
            f"Dataset name {shown} is not allowed: use 1-{MAX_NAME_LENGTH} printable "
            "characters (no line breaks or tabs) without spaces at either end."
        )
    if VERSION.search(name):
        raise StorageError(
            f"Dataset name {name!r} is not allowed: names ending in @v and a number are kept "
            "for the earlier versions an update leaves (NAME@v1, NAME@v2, ...)."
        )
    return name


VERSION = re.compile(r"@v\d+$")
"""The suffix of a dataset version an update replaced (``services.market.updates``)."""


def create_dataset(
    *,
    session: Session,
    name: str,
    kind: str,
    source: str,
    tickers: list[str],
    features: list[str],
    row_count: int,
    content_hash: str,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    recipe: dict[str, Any] | None = None,
) -> Dataset:
    check_dataset_name(name)
    if get_dataset(session=session, name=name) is not None:
        raise StorageError(f"A dataset named {name!r} exists already; choose another name.")
    dataset = Dataset(
        name=name,
        kind=kind,
        source=source,
        tickers=list(tickers),
        start_date=start_date,
        end_date=end_date,
        features=list(features),
        row_count=row_count,
        content_hash=content_hash,
        recipe=recipe or {},
    )
    session.add(dataset)
    session.flush()
    return dataset


def get_dataset(*, session: Session, name: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.name == name))


def get_dataset_by_id(*, session: Session, dataset_id: int) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def find_dataset_by_hash(*, session: Session, content_hash: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.content_hash == content_hash).limit(1))


RECOMMENDER_KIND = "recsys"


def list_datasets(*, session: Session, recommender: bool | None = None) -> list[Dataset]:
    """Datasets, newest first: all, only recommender ones (True) or only market ones (False)."""
    query = select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id)
    if recommender is True:
        query = query.where(Dataset.kind == RECOMMENDER_KIND)
    elif recommender is False:
        query = query.where(Dataset.kind != RECOMMENDER_KIND)
    return list(session.scalars(query))


def delete_dataset(*, session: Session, name: str) -> bool:
    """Delete a dataset's registration and its stored rows; refused while runs use it."""
    dataset = get_dataset(session=session, name=name)
    if dataset is None:
        return False
    users = session.scalars(select(Run.id).where(Run.dataset_id == dataset.id)).all()
    if users:
        runs = ", ".join(str(run_id) for run_id in users)
        raise StorageError(f"Dataset {name!r} is used by runs {runs}; delete those runs first.")
    raw = ("_prices", "_headlines", "_policy_events", "_macro_series", "_oracle")
    suffixes = ("", *raw, "_users", "_items", "_interactions")  # market, or recommender
    drop_tables(session=session, tables=[f"{dataset.table_name}{s}" for s in suffixes])
    session.delete(dataset)
    session.flush()
    return True


def create_run(
    *,
    session: Session,
    model_kind: str,
    config: dict[str, Any],
    seed: int,
    dataset_id: int | None = None,
    parent_run_id: int | None = None,
) -> Run:
    if dataset_id is not None:
        _require(session.get(Dataset, dataset_id), "dataset", dataset_id)
    if parent_run_id is not None:
        _require(session.get(Run, parent_run_id), "run", parent_run_id)
    run = Run(
        model_kind=model_kind,
        config=config,
        seed=seed,
        dataset_id=dataset_id,
        parent_run_id=parent_run_id,
    )
    session.add(run)
    session.flush()
    return run


def get_run(*, session: Session, run_id: int) -> Run | None:
    return session.get(Run, run_id)


def list_runs(*, session: Session, model_kind: str | None = None) -> list[Run]:
    query = select(Run).order_by(Run.id.desc())
    if model_kind is not None:
        query = query.where(Run.model_kind == model_kind)
    return list(session.scalars(query))


def run_kind(*, session: Session, run_id: int) -> str | None:
    """The run's model kind, None when there is no such run (the row itself is not loaded)."""
    return session.scalar(select(Run.model_kind).where(Run.id == run_id))


def run_ids(*, session: Session, model_kind: str, status: JobStatus) -> list[int]:
    """Ids of the runs of ``model_kind`` in ``status``, newest first (no row is loaded)."""
    query = (
        select(Run.id)
        .where(Run.model_kind == model_kind, Run.status == status.value)
        .order_by(Run.id.desc())
    )
    return list(session.scalars(query))


def set_run_status(
    *,
    session: Session,
    run_id: int,
    status: JobStatus,
    summary_metrics: dict[str, Any] | None = None,
) -> Run:
    run = _require(session.get(Run, run_id), "run", run_id)
    run.status = status.value
    if status is JobStatus.RUNNING and run.started_at is None:
        run.started_at = utcnow()
    if status.finished:
        run.finished_at = utcnow()
    if summary_metrics is not None:
        run.summary_metrics = summary_metrics
    session.flush()
    return run


def label_run(
    *, session: Session, run_id: int, name: str | None = None, tags: list[str] | None = None
) -> Run:
    """Set a run's name (an empty string clears it) and/or replace its tags."""
    run = _require(session.get(Run, run_id), "run", run_id)
    if name is not None:
        run.name = name or None
    if tags is not None:
        run.tags = sorted(set(tags))
    session.flush()
    return run


@dataclass(frozen=True)
class MetricRow:
    """One metric value as trainers report it."""

    epoch: int
    split: str
    name: str
    value: float
    step: int | None = None


def append_metrics(*, session: Session, run_id: int, rows: Iterable[MetricRow]) -> int:
    """Insert a batch of metric rows in one statement; returns how many were written."""
    _require(session.get(Run, run_id), "run", run_id)
    now = utcnow()
    values = [
        {
            "run_id": run_id,
            "epoch": row.epoch,
            "step": row.step,
            "split": row.split,
            "name": row.name,
            "value": float(row.value),
            "recorded_at": now,
        }
        for row in rows
    ]
    if values:
        session.execute(insert(RunMetric), values)
    return len(values)


def list_metrics(*, session: Session, run_id: int) -> list[RunMetric]:
    query = (
        select(RunMetric)
        .where(RunMetric.run_id == run_id)
        .order_by(RunMetric.epoch, RunMetric.split, RunMetric.name, RunMetric.id)
    )
    return list(session.scalars(query))


def count_metrics(*, session: Session, run_id: int | None = None) -> int:
    query = select(func.count()).select_from(RunMetric)
    if run_id is not None:
        query = query.where(RunMetric.run_id == run_id)
    return int(session.scalar(query) or 0)


def delete_run(*, session: Session, run_id: int) -> bool:
    """Delete a run with its metrics, artifacts records, jobs and forecasts (files stay on
    disk)."""
    if session.get(Run, run_id) is None:
        return False
    for table in (RunMetric, Artifact, Job, Forecast):
        session.execute(delete(table).where(table.run_id == run_id))
    session.execute(delete(Run).where(Run.id == run_id))
    return True


def add_artifact(*, session: Session, run_id: int, kind: str, path: Path) -> Artifact:
    """Record a file a run produced, with its size and SHA-256 read from disk."""
    _require(session.get(Run, run_id), "run", run_id)
    if not path.is_file():
        raise StorageError(f"Artifact file {path} does not exist.")
    artifact = Artifact(
        run_id=run_id,
        kind=kind,
        path=str(path),
        bytes=path.stat().st_size,
        sha256=file_sha256(path),
    )
    session.add(artifact)
    session.flush()
    return artifact


def list_runs_with_artifact(*, session: Session, kind: str) -> list[Run]:
    """Runs that recorded at least one artifact of ``kind`` (e.g. "checkpoint"), newest first."""
    has_kind = select(Artifact.run_id).where(Artifact.kind == kind)
    return list(session.scalars(select(Run).where(Run.id.in_(has_kind)).order_by(Run.id.desc())))


def list_artifacts(
    *, session: Session, run_id: int | None = None, kind: str | None = None
) -> list[Artifact]:
    """Artifacts of one run or of all, optionally of one kind, oldest first."""
    query = select(Artifact).order_by(Artifact.id)
    if run_id is not None:
        query = query.where(Artifact.run_id == run_id)
    if kind is not None:
        query = query.where(Artifact.kind == kind)
    return list(session.scalars(query))


def get_setting(*, session: Session, key: str) -> Any:
    setting = session.get(Setting, key)
    return None if setting is None else setting.value


def set_setting(*, session: Session, key: str, value: Any) -> None:
    setting = session.get(Setting, key)
    if setting is None:
        session.add(Setting(key=key, value=value))
    else:
        setting.value = value
    session.flush()


def create_job(
    *,
    session: Session,
    kind: str,
    run_id: int | None = None,
    request: dict[str, Any] | None = None,
) -> Job:
    """A queued job; ``request``: what it is asked to do (device, folds, resume_from)."""
    if run_id is not None:
        _require(session.get(Run, run_id), "run", run_id)
    job = Job(kind=kind, run_id=run_id, request=dict(request or {}))
    session.add(job)
    session.flush()
    return job


def get_job(*, session: Session, job_id: int) -> Job | None:
    return session.get(Job, job_id)


def list_jobs(*, session: Session, statuses: Iterable[JobStatus] | None = None) -> list[Job]:
    query = select(Job).order_by(Job.id.desc())
    if statuses is not None:
        query = query.where(Job.status.in_([s.value for s in statuses]))
    return list(session.scalars(query))


def update_job(
    *,
    session: Session,
    job_id: int,
    status: JobStatus | None = None,
    pid: int | None = None,
    progress: dict[str, Any] | None = None,
    error: str | None = None,
    heartbeat: bool = False,
) -> Job:
    """Change a job; a finished job keeps its final status."""
    job = _require(session.get(Job, job_id), "job", job_id)
    now = utcnow()
    if status is not None and status.value != job.status:
        if JobStatus(job.status).finished:
            raise StorageError(f"Job {job_id} is already {job.status}; it cannot become {status}.")
        job.status = status.value
        if status is JobStatus.RUNNING:
            job.started_at = job.started_at or now
        if status.finished:
            job.finished_at = now
    if pid is not None:
        job.pid = pid
    if progress is not None:
        job.progress = progress
    if error is not None:
        job.error = error
    if heartbeat:
        job.heartbeat_at = now
    session.flush()
    return job


def claim_job(*, session: Session, job_id: int, owner: str) -> bool:
    """Mark a queued job running for ``owner`` in one statement; False when it is no longer
    queued (another job manager on the same database claimed it first, or it was cancelled)."""
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.RUNNING.value, owner=owner, started_at=now, heartbeat_at=now)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    session.expire_all()  # rows read before now show the claim
    return claimed is not None


def request_cancel(*, session: Session, job_id: int) -> Job:
    job = _require(session.get(Job, job_id), "job", job_id)
    job.cancel_requested = True
    session.flush()
    return job


def count_rows(*, session: Session) -> dict[str, int]:
    """How many datasets, runs and jobs the database holds (the home page's figures)."""
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for name, model in (("datasets", Dataset), ("runs", Run), ("jobs", Job))
    }


def _require(obj: T | None, what: str, key: int) -> T:
    if obj is None:
        raise StorageError(f"No {what} with id {key}.")
    return obj
