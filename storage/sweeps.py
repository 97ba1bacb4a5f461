"""Sweeps: keyword-only repository functions over the ``sweeps`` table and its trial jobs.

The study itself (trials, parameters, intermediate values, verdicts) is Optuna's, in its own
tables (``services.sweeps.study``); this table says what was searched, on what, and who drives it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import StorageError
from storage.models import Job, JobStatus, Sweep, utcnow
from storage.repository import _require


def create_sweep(
    *,
    session: Session,
    model_kind: str,
    dataset_id: int,
    space: dict[str, Any],
    base: dict[str, Any],
    trials: int,
    parallel: int,
    driver: str,
) -> Sweep:
    """A sweep row (queued) whose study is named ``sweep_<id>``."""
    sweep = Sweep(
        study="",
        model_kind=model_kind,
        dataset_id=dataset_id,
        space=space,
        base=base,
        trials=trials,
        parallel=parallel,
        driver=driver,
    )
    session.add(sweep)
    session.flush()
    sweep.study = f"sweep_{sweep.id}"
    session.flush()
    return sweep


def get_sweep(*, session: Session, sweep_id: int) -> Sweep | None:
    return session.get(Sweep, sweep_id)


def list_sweeps(*, session: Session, statuses: list[JobStatus] | None = None) -> list[Sweep]:
    """Sweeps, newest first, optionally only those in ``statuses``."""
    query = select(Sweep).order_by(Sweep.id.desc())
    if statuses is not None:
        query = query.where(Sweep.status.in_([s.value for s in statuses]))
    return list(session.scalars(query))


def sweep_jobs(*, session: Session, sweep_id: int) -> list[Job]:
    """The sweep's trial jobs, oldest first."""
    return list(session.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.id)))


def update_sweep(
    *,
    session: Session,
    sweep_id: int,
    status: JobStatus | None = None,
    driver: str | None = None,
    error: str | None = None,
) -> Sweep:
    """Change a sweep; a finished sweep keeps its final status."""
    sweep = _require(session.get(Sweep, sweep_id), "sweep", sweep_id)
    if status is not None and status.value != sweep.status:
        if JobStatus(sweep.status).finished:
            raise StorageError(f"Sweep {sweep_id} is already {sweep.status}.")
        sweep.status = status.value
        if status.finished:
            sweep.finished_at = utcnow()
    if driver is not None:
        sweep.driver = driver
    if error is not None:
        sweep.error = error
    session.flush()
    return sweep


def mark_trial(*, session: Session, job_id: int, sweep_id: int, trial: int) -> Job:
    """Record that ``job_id`` runs trial ``trial`` of sweep ``sweep_id``."""
    job = _require(session.get(Job, job_id), "job", job_id)
    job.sweep_id, job.trial = sweep_id, trial
    session.flush()
    return job
