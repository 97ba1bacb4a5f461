"""Hyperparameter sweeps with Optuna: trials are ordinary training jobs.

A sweep searches a *space* over the numeric and choice fields of a model's config dataclasses
(dotted paths prefixed ``model.`` or ``training.``; see ``parse_space`` for the YAML form and
``suggested_space`` for the defaults the form and the CLI offer). It is a ``sweeps`` row plus
an Optuna study named ``sweep_<id>`` in Optuna's RDB storage: the same PostgreSQL database
when the metadata is there, otherwise a SQLite file beside the DuckDB file
(``DataHome.sweeps_url``).

How a sweep runs, all inside the job manager's tick (``services.jobs.manager``):

1. the manager that *drives* the sweep (the one that started it; another on the same host
   takes over when that process is gone) asks the study for trials while fewer than
   ``parallel`` of its trial jobs are queued or running, and submits each as an ordinary
   ``train`` job (a ``jobs`` row with ``sweep_id`` and ``trial``, a ``runs`` row): they run
   locally or on Ray, ``TRENDLAB_MAX_JOBS`` at a time, like any job. The first trial is the
   base config itself (the defaults, or the configs given), so the best trial is never worse
   than it;
2. the manager that ingests a trial's events reports each epoch's validation loss
   (``val/total``, the trainer's early-stopping monitor) to the study as an intermediate
   value and asks Optuna's median pruner; a "prune" verdict becomes the worker's ``prune``
   file, which its trainer callback (``services.jobs.worker.PruneCheck``) turns into a stop at the
   end of the epoch under way (the run ends ``stopped_because`` = "pruned");
3. when the job ends the trial is told: its best validation loss (complete), pruned, or
   failed (failed, cancelled or interrupted jobs). When every trial has ended, so has the
   sweep.

Workers never open a database for this: the verdict travels through the job folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from core.config import Config, flatten
from services.access import ensure_writable
from services.registry import trainable
from services.sweeps.driver import TrialQueue, create_study, load_study
from services.sweeps.space import SweepError, parse_space, trial_configs
from storage.data_home import DataHome
from storage.db import StorageError
from storage.models import JobStatus
from storage.repository import get_dataset, get_dataset_by_id, session_scope
from storage.sweeps import (
    create_sweep,
    get_sweep,
    list_sweeps,
    sweep_jobs,
    update_sweep,
)

if TYPE_CHECKING:
    pass


def start_sweep(
    manager: TrialQueue,
    *,
    model_name: str,
    dataset_name: str,
    space: Mapping[str, Any],
    trials: int,
    parallel: int = 2,
    model_config: Config | None = None,
    training: Config | None = None,
) -> int:
    """Create a sweep that ``manager`` drives (its trials start on the next ticks); returns
    its id. Refused in read-only mode; SweepError or StorageError say what is wrong."""
    ensure_writable("starting sweeps")
    spec = trainable(model_name)
    if not spec.sweepable:
        raise SweepError("Sweeps search the market models' configs; the recommender has none.")
    if not 1 <= trials <= 1000 or not 1 <= parallel <= 64:
        raise SweepError("Give 1-1000 trials and 1-64 parallel trials.")
    model_config = model_config or spec.config_class()
    training = training or spec.training_config_class()
    with session_scope(manager.engine) as session:
        dataset = get_dataset(session=session, name=dataset_name)
        if dataset is None:
            raise StorageError(f"No dataset named {dataset_name!r}.")
        dimensions = parse_space(model_name, space, dataset.recipe)
        base = {"model": model_config.to_dict(), "training": training.to_dict()}
        trial_configs(spec, base, {})  # the base itself must be a valid config
        sweep = create_sweep(
            session=session,
            model_kind=model_name,
            dataset_id=dataset.id,
            space={d.path: d.to_dict() for d in dimensions},
            base=base,
            trials=trials,
            parallel=parallel,
            driver=manager.owner,
        )
        sweep_id, study_name = sweep.id, sweep.study
        # The study exists before the sweep row is committed: a driver that saw the row
        # first could fail the sweep with Optuna's "Record does not exist." (seen once in CI).
        study = create_study(manager.home, study_name, seed=int(training.seed))
        defaults = flatten(base)  # "model.dropout" -> 0.1, as the space names fields
        first = {d.path: defaults[d.path] for d in dimensions if d.contains(defaults.get(d.path))}
        study.enqueue_trial(first)  # the base config is trial 0: the best is never worse
    return sweep_id


def cancel_sweep(manager: TrialQueue, sweep_id: int) -> None:
    """Stop asking for trials and cancel the sweep's queued and running jobs."""
    ensure_writable("cancelling sweeps")
    with session_scope(manager.engine) as session:
        sweep = get_sweep(session=session, sweep_id=sweep_id)
        if sweep is None:
            raise StorageError(f"No sweep {sweep_id}.")
        if JobStatus(sweep.status).finished:
            return
        update_sweep(session=session, sweep_id=sweep_id, status=JobStatus.CANCELLED)
        live = [
            j.id
            for j in sweep_jobs(session=session, sweep_id=sweep_id)
            if not JobStatus(j.status).finished
        ]
    for job_id in live:
        manager.cancel(job_id)


@dataclass(frozen=True)
class TrialInfo:
    number: int
    state: str
    """complete, pruned, fail, running or waiting."""
    value: float | None
    params: dict[str, Any]
    job_id: int | None
    run_id: int | None
    epochs: int


@dataclass(frozen=True)
class SweepInfo:
    id: int
    model: str
    dataset: str | None
    status: str
    trials: int
    parallel: int
    space: dict[str, Any]
    error: str | None
    results: list[TrialInfo] = field(default_factory=list)
    importance: dict[str, float] = field(default_factory=dict)
    """Parameter -> share of the objective's variance it explains (fANOVA), once two or more
    trials completed."""

    @property
    def best(self) -> TrialInfo | None:
        complete = [t for t in self.results if t.state == "complete" and t.value is not None]
        return min(complete, key=lambda t: t.value) if complete else None

    @property
    def run_ids(self) -> list[int]:
        return [t.run_id for t in self.results if t.run_id is not None]

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "sweep_id": self.id,
            "model": self.model,
            "dataset": self.dataset,
            "status": self.status,
            "trials": self.trials,
            "parallel": self.parallel,
            "space": self.space,
            "error": self.error,
            "best": best.__dict__ if best else None,
            "importance": self.importance,
            "results": [t.__dict__ for t in self.results],
        }


def sweeps(*, engine: Engine) -> list[tuple[int, str, str]]:
    """(id, model, status) of every sweep, newest first (no study is opened)."""
    with session_scope(engine) as session:
        return [(s.id, s.model_kind, s.status) for s in list_sweeps(session=session)]


def sweep_info(*, engine: Engine, home: DataHome, sweep_id: int) -> SweepInfo | None:
    """A sweep with each trial's state, value, parameters, job and run, and the parameters'
    importance (fANOVA, when two or more trials completed)."""
    import optuna

    with session_scope(engine) as session:
        sweep = get_sweep(session=session, sweep_id=sweep_id)
        if sweep is None:
            return None
        dataset = get_dataset_by_id(session=session, dataset_id=sweep.dataset_id)
        jobs = {j.trial: (j.id, j.run_id) for j in sweep_jobs(session=session, sweep_id=sweep_id)}
        row = {
            "id": sweep.id,
            "model": sweep.model_kind,
            "dataset": dataset.name if dataset else None,
            "status": sweep.status,
            "trials": sweep.trials,
            "parallel": sweep.parallel,
            "space": dict(sweep.space),
            "error": sweep.error,
        }
        study_name = sweep.study
    try:
        study = load_study(home, study_name)
    except KeyError:  # the study was never created (the sweep failed to start)
        return SweepInfo(**row)
    results = [
        TrialInfo(
            number=t.number,
            state=t.state.name.lower(),
            value=t.value,
            params=dict(t.params),
            job_id=jobs.get(t.number, (None, None))[0],
            run_id=jobs.get(t.number, (None, None))[1],
            epochs=len(t.intermediate_values),
        )
        for t in study.get_trials(deepcopy=False)
    ]
    importance: dict[str, float] = {}
    complete = [t for t in results if t.state == "complete"]
    if len(complete) >= 2 and len(row["space"]) >= 1:
        try:
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            importance = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (RuntimeError, ValueError):  # too few distinct values to say anything
            importance = {}
    return SweepInfo(**row, results=results, importance=dict(importance))


def run_sweep_here(manager: TrialQueue, sweep_id: int, *, poll_s: float = 0.5) -> JobStatus:
    """Tick ``manager`` until the sweep ends (the CLI's foreground driver)."""
    while True:
        manager.tick()
        with session_scope(manager.engine) as session:
            status = JobStatus(get_sweep(session=session, sweep_id=sweep_id).status)
        if status.finished:
            return status
        time.sleep(poll_s)


def max_parallel() -> int:
    """The parallel trials a sweep form offers by default: the job slots configured."""
    return max(int(os.environ.get("TRENDLAB_MAX_JOBS", "1")), 1)
