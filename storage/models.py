"""Database tables as SQLAlchemy 2.0 typed models, the same on DuckDB and PostgreSQL.

DuckDB has no SERIAL, so every integer key draws from a named ``Sequence``. JSON columns hold
lists and dicts (configs, feature lists, summary metrics); timestamps are naive UTC.

The schema declares no FOREIGN KEY constraints: DuckDB cannot delete a parent row in the
same transaction that deletes the rows referring to it, which would make deleting a run with
its metrics impossible to do atomically. The repository functions keep references whole
instead (``delete_run`` removes children first; ``delete_dataset`` refuses while runs use it),
and tests check both.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    Sequence,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[str]: JSON, dt.datetime: DateTime}


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


class SchemaVersion(Base):
    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    applied_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, Sequence("datasets_id_seq"), primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    kind: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(String)
    tickers: Mapped[list[str]]
    start_date: Mapped[dt.date | None]
    end_date: Mapped[dt.date | None]
    features: Mapped[list[str]]
    row_count: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String)
    recipe: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def table_name(self) -> str:
        """The DuckDB table holding the rows; built from the integer key, safe in SQL."""
        return f"dataset_{int(self.id)}"


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, Sequence("runs_id_seq"), primary_key=True)
    model_kind: Mapped[str] = mapped_column(String)
    dataset_id: Mapped[int | None] = mapped_column(index=True)
    config: Mapped[dict[str, Any]]
    seed: Mapped[int]
    status: Mapped[str] = mapped_column(String, default=JobStatus.QUEUED.value)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    summary_metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    parent_run_id: Mapped[int | None] = mapped_column(index=True)
    name: Mapped[str | None] = mapped_column(String)
    """What the user called the run (schema 5); None until named."""
    tags: Mapped[list[str]] = mapped_column(default=list)
    """The user's tags, sorted (schema 5)."""


class RunMetric(Base):
    __tablename__ = "run_metrics"

    id: Mapped[int] = mapped_column(Integer, Sequence("run_metrics_id_seq"), primary_key=True)
    run_id: Mapped[int] = mapped_column(index=True)
    epoch: Mapped[int]
    step: Mapped[int | None]
    split: Mapped[str] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    value: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, Sequence("artifacts_id_seq"), primary_key=True)
    run_id: Mapped[int] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String)
    path: Mapped[str] = mapped_column(String)
    bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Setting(Base):
    """Server-wide choices that outlive a process, e.g. the active recommender run."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[dict[str, Any]]  # JSON: {"run_id": 3}
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Sweep(Base):
    """A hyperparameter search: an Optuna study whose trials run as ordinary jobs."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Integer, Sequence("sweeps_id_seq"), primary_key=True)
    study: Mapped[str] = mapped_column(String, unique=True)
    """The Optuna study's name in the sweep storage (``services.sweeps.driver.study_storage``)."""
    model_kind: Mapped[str] = mapped_column(String)
    dataset_id: Mapped[int]
    space: Mapped[dict[str, Any]]
    """Dotted config path ("training.batch_size") -> {low, high, log} or {choices}."""
    base: Mapped[dict[str, Any]]
    """The configs every trial starts from: {"model": {...}, "training": {...}}."""
    trials: Mapped[int]
    parallel: Mapped[int]
    status: Mapped[str] = mapped_column(String, default=JobStatus.QUEUED.value)
    driver: Mapped[str | None] = mapped_column(String)
    """host:pid of the process that asks the study for trials (a server or a CLI)."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, Sequence("jobs_id_seq"), primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    run_id: Mapped[int | None] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String, default=JobStatus.QUEUED.value)
    pid: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String)
    """host:pid of the job manager that launched it and ingests its events."""
    sweep_id: Mapped[int | None]
    trial: Mapped[int | None]
    """The Optuna trial number when the job is a sweep's trial."""
    request: Mapped[dict[str, Any] | None]
    """What the job was asked to do, fixed at submit (the device, a walk-forward's folds,
    the checkpoint a resumed job goes on from); ``progress`` is what its worker reports."""


class Forecast(Base):
    """One stored forecast: what run ``run_id`` said as of ``as_of`` about ``ticker`` at one
    horizon, on one version of a dataset (its id and content hash), with the band from
    the run's test errors. Its outcome is not stored: it is read from the dataset once a
    newer version holds it (``services.market.forecasts``)."""

    __tablename__ = "forecasts"
    __table_args__ = (UniqueConstraint("run_id", "as_of", "horizon", "ticker"),)
    id: Mapped[int] = mapped_column(Integer, Sequence("forecasts_id_seq"), primary_key=True)
    run_id: Mapped[int] = mapped_column(index=True)
    dataset_id: Mapped[int]
    dataset_hash: Mapped[str] = mapped_column(String)
    as_of: Mapped[dt.date] = mapped_column(Date)
    ticker: Mapped[str] = mapped_column(String)
    horizon: Mapped[int]
    target_date: Mapped[dt.date] = mapped_column(Date)
    score: Mapped[float] = mapped_column(Float)
    predicted_class: Mapped[str] = mapped_column(String)
    probabilities: Mapped[dict[str, Any]]
    band_low: Mapped[float] = mapped_column(Float)
    band_high: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
