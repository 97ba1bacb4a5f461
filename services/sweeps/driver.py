"""The job manager's sweep duties (``services.sweeps.study`` tells the whole story): Optuna's
storage and studies, and ``SweepDriver``, which asks for trials, reports their epochs
to the pruner and tells the study how each ended. It talks to the manager through
``TrialQueue``, so it never imports the job manager. Optuna is imported where it is used: it
takes about 0.3 s to import, which a server that never sweeps should not pay at start-up."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from core.config import Config, ConfigError
from core.market.baselines import QUICKEST
from services.jobs.run_owners import owner_gone
from services.jobs.worker import PRUNE
from services.registry import trainable
from services.sweeps.space import Dimension, dimension_bounds, trial_configs
from storage.data_home import DataHome
from storage.models import JobStatus
from storage.repository import get_dataset_by_id, session_scope
from storage.sweeps import (
    get_sweep,
    list_sweeps,
    sweep_jobs,
    update_sweep,
)

if TYPE_CHECKING:
    import optuna


OBJECTIVE = "val/total"
"""What a trial minimises: the validation loss the trainer early-stops on (market models)."""


STARTUP_TRIALS = 2
"""Trials that finish before the pruner judges any (it needs peers to compare with)."""


WARMUP_EPOCHS = 1
"""Epochs a trial trains before it can be pruned."""


class TrialQueue(Protocol):
    """What a sweep needs of the job manager that drives it (``services.jobs.manager.JobManager``):
    where its data is, who it is, and a way to queue, cancel and advance trial jobs."""

    engine: Engine
    home: DataHome
    owner: str
    """The manager's name (host:pid:tag), the ``driver`` of the sweeps it drives."""

    def submit_training(
        self,
        *,
        model_name: str,
        dataset_name: str,
        training: Config,
        model_config: Config,
        baselines: Sequence[str],
        sweep: tuple[int, int] | None = None,
    ) -> int: ...

    def cancel(self, job_id: int) -> None: ...

    def tick(self) -> None: ...


class TrialWorker(Protocol):
    """A running trial as the manager follows it: which trial it is, and its job folder."""

    sweep: tuple[int, int] | None
    folder: Path


_storages: dict[str, Any] = {}


_storages_lock = threading.Lock()


def study_storage(url: str) -> Any:
    """Optuna's RDB storage at ``url``, one per process. Opening it creates Optuna's tables
    when missing; two processes doing that at once collide, so a failed first open is retried
    (the other's tables are there by then)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 60}}
    else:
        kwargs = {"pool_pre_ping": True}
    with _storages_lock:
        if url not in _storages:
            try:
                _storages[url] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
            except (OperationalError, ProgrammingError):
                _storages[url] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        return _storages[url]


def create_study(home: DataHome, name: str, *, seed: int) -> optuna.Study:
    import optuna

    return optuna.create_study(
        study_name=name,
        storage=study_storage(home.sweeps_url),
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=_pruner(),
    )


def load_study(home: DataHome, name: str, *, seed: int = 0) -> optuna.Study:
    import optuna

    return optuna.load_study(
        study_name=name,
        storage=study_storage(home.sweeps_url),
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=_pruner(),
    )


def _pruner() -> Any:
    import optuna

    return optuna.pruners.MedianPruner(
        n_startup_trials=STARTUP_TRIALS, n_warmup_steps=WARMUP_EPOCHS
    )


class SweepDriver:
    """The job manager's sweep duties (see the module docstring); called under its lock."""

    def __init__(self, manager: TrialQueue) -> None:
        self.manager = manager
        self.studies: dict[str, optuna.Study] = {}

    def study(self, name: str, seed: int = 0) -> optuna.Study:
        if name not in self.studies:
            self.studies[name] = load_study(self.manager.home, name, seed=seed)
        return self.studies[name]

    def tick(self) -> None:
        """Ask for trials for the sweeps this manager drives; end those whose trials ended."""
        with session_scope(self.manager.engine) as session:
            active = list_sweeps(session=session, statuses=[JobStatus.QUEUED, JobStatus.RUNNING])
            mine = []
            for sweep in active:
                if sweep.driver != self.manager.owner and owner_gone(sweep.driver):
                    update_sweep(session=session, sweep_id=sweep.id, driver=self.manager.owner)
                    sweep.driver = self.manager.owner
                if sweep.driver == self.manager.owner:
                    jobs = sweep_jobs(session=session, sweep_id=sweep.id)
                    running = sum(not JobStatus(j.status).finished for j in jobs)
                    mine.append((sweep, running))
        for sweep, running in mine:
            try:
                self._advance(sweep, running)
            except Exception as error:  # a broken sweep ends; the job loop goes on
                with session_scope(self.manager.engine) as session:
                    update_sweep(
                        session=session,
                        sweep_id=sweep.id,
                        status=JobStatus.FAILED,
                        error=f"{type(error).__name__}: {error}",
                    )

    def _advance(self, sweep: Any, running: int) -> None:
        import optuna

        seed = int(sweep.base["training"].get("seed", 0))
        study = self.study(sweep.study, seed)
        waiting = optuna.trial.TrialState.WAITING  # the base config, enqueued: not asked yet
        asked = sum(t.state != waiting for t in study.get_trials(deepcopy=False))
        if asked >= sweep.trials and running == 0:
            complete = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
            with session_scope(self.manager.engine) as session:
                update_sweep(
                    session=session,
                    sweep_id=sweep.id,
                    status=JobStatus.SUCCEEDED if complete else JobStatus.FAILED,
                    error=None if complete else "No trial completed.",
                )
            return
        spec = trainable(sweep.model_kind)
        distributions = {
            path: Dimension(path, **dimension_bounds(bounds)).distribution()
            for path, bounds in sweep.space.items()
        }
        with session_scope(self.manager.engine) as session:
            dataset = get_dataset_by_id(session=session, dataset_id=sweep.dataset_id)
            if sweep.status == JobStatus.QUEUED:
                update_sweep(session=session, sweep_id=sweep.id, status=JobStatus.RUNNING)
        while asked < sweep.trials and running < sweep.parallel:
            trial = study.ask(distributions)
            asked += 1
            try:
                model_config, training = trial_configs(spec, sweep.base, trial.params)
            except ConfigError as error:  # a combination the configs refuse
                trial.set_user_attr("error", str(error))
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            job_id = self.manager.submit_training(
                model_name=sweep.model_kind,
                dataset_name=dataset.name,
                training=training,
                model_config=model_config,
                baselines=[QUICKEST],
                sweep=(sweep.id, trial.number),
            )
            trial.set_user_attr("job_id", job_id)
            running += 1

    def report(self, job_id: int, worker: TrialWorker, record: Mapping[str, float]) -> None:
        """An epoch of a trial was ingested: report it, and pass on a prune verdict."""
        import optuna

        sweep_id, number = worker.sweep
        value = record.get(OBJECTIVE)
        if value is None or not math.isfinite(value):
            return
        trial = self._trial(sweep_id, number)
        if trial is None or trial.state != optuna.trial.TrialState.RUNNING:
            return
        study = self.studies[self._name(sweep_id)]
        live = optuna.trial.Trial(study, trial._trial_id)
        step = int(record["epoch"])
        if step in trial.intermediate_values:
            return  # reported before a restart
        live.report(float(value), step)
        if live.should_prune():
            (worker.folder / PRUNE).touch()

    def finished(self, sweep: tuple[int, int], status: JobStatus, summary: Mapping) -> None:
        """A trial's job ended: tell the study how."""
        import optuna

        sweep_id, number = sweep
        trial = self._trial(sweep_id, number)
        if trial is None or trial.state != optuna.trial.TrialState.RUNNING:
            return
        study = self.studies[self._name(sweep_id)]
        value = summary.get("best_val_loss")
        if status is JobStatus.SUCCEEDED and summary.get("stopped_because") == "pruned":
            study.tell(number, state=optuna.trial.TrialState.PRUNED)
        elif status is JobStatus.SUCCEEDED and isinstance(value, int | float) and value < math.inf:
            study.tell(number, float(value))
        else:
            study.tell(number, state=optuna.trial.TrialState.FAIL)

    def _name(self, sweep_id: int) -> str:
        with session_scope(self.manager.engine) as session:
            sweep = get_sweep(session=session, sweep_id=sweep_id)
            name = sweep.study if sweep else f"sweep_{sweep_id}"
        self.study(name)
        return name

    def _trial(self, sweep_id: int, number: int) -> optuna.trial.FrozenTrial | None:
        study = self.study(self._name(sweep_id))
        return next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
