"""Hyperparameter sweeps with Optuna: trials are ordinary training jobs.

A sweep searches a *space* over the numeric and choice fields of a model's config dataclasses
(dotted paths prefixed ``model.`` or ``training.``; see ``parse_space`` for the YAML form and
``suggested_space`` for the defaults the form and the CLI offer). It is a ``sweeps`` row plus
an Optuna study named ``sweep_<id>`` in Optuna's RDB storage: the same PostgreSQL database
when the metadata is there, otherwise a SQLite file beside the DuckDB file
(``DataHome.sweeps_url``).

How a sweep runs, all inside the job manager's tick (``services.jobs``):

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
   file, which its trainer callback (``services.worker.PruneCheck``) turns into a stop at the
   end of the epoch under way (the run ends ``stopped_because`` = "pruned");
3. when the job ends the trial is told: its best validation loss (complete), pruned, or
   failed (failed, cancelled or interrupted jobs). When every trial has ended, so has the
   sweep.

Workers never open a database for this: the verdict travels through the job folder.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine

from core.config import Config, ConfigError, flat_fields, flatten, from_flat
from services.access import ensure_writable
from services.job_kinds import dataset_fixed_fields
from services.registry import trainable
from services.run_owners import owner_gone
from services.worker import PRUNE
from storage.db import StorageError
from storage.home import DataHome
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
    import optuna

OBJECTIVE = "val/total"
"""What a trial minimises: the validation loss the trainer early-stops on (market models)."""
NOT_SEARCHED = ("seed", "epochs", "scheduler.total_epochs")
"""Fields every trial shares with the base config: the same data, seed and budget."""
STARTUP_TRIALS = 2
"""Trials that finish before the pruner judges any (it needs peers to compare with)."""
WARMUP_EPOCHS = 1
"""Epochs a trial trains before it can be pruned."""
SUGGESTED = (
    "training.optimizer.base_learning_rate",
    "training.optimizer.weight_decay",
    "training.batch_size",
    "model.dropout",
)
"""Dimensions the form and the CLI start from, where the model has them."""


class SweepError(ValueError):
    """A sweep cannot be started as asked; the message names the field."""


# --------------------------------------------------------------------------------------------
# The search space


@dataclass(frozen=True)
class Dimension:
    """One searched field: a numeric range (``low``..``high``, on a log scale when ``log``)
    or a list of ``choices``."""

    path: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}

    def distribution(self) -> Any:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.choices is not None:
            return CategoricalDistribution(list(self.choices))
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        return isinstance(value, int | float) and self.low <= value <= self.high


def searchable_fields(model_name: str, recipe: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Dotted path -> the config field, for every numeric or choice field a sweep may search
    (not the seed and budget every trial shares, nor the fields the dataset fixes)."""
    spec = trainable(model_name)
    fixed = {f"model.{p}" for p in dataset_fixed_fields(model_name, dict(recipe or {}))}
    found = {}
    for prefix, cls in (("model", spec.config_class), ("training", spec.training_config_class)):
        for item in flat_fields(cls):
            path = f"{prefix}.{item.path}"
            numeric = isinstance(item.default, int | float) and not isinstance(item.default, bool)
            if item.path in NOT_SEARCHED or path in fixed or not (numeric or item.choices):
                continue
            found[path] = item
    return found


def default_dimension(path: str, item: Any) -> Dimension:
    """A range around a field's default: a decade either side on a log scale for rates and
    decays, half to double otherwise (up to 0.9 for fractions); every choice."""
    if item.choices:
        return Dimension(path, choices=tuple(item.choices))
    value, integer = item.default, isinstance(item.default, int)
    if integer:
        return Dimension(path, max(1, value // 2), max(2, value * 2), integer=True)
    if value > 0 and any(k in path for k in ("learning_rate", "weight_decay", "lr_")):
        return Dimension(path, value / 10, value * 10, log=True)
    if 0 < value < 1:
        return Dimension(path, value / 2, min(value * 2, 0.9))
    if value <= 0:
        return Dimension(path, 0.0, 0.5)
    return Dimension(path, value / 2, value * 2)


def suggested_space(model_name: str, recipe: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The space a sweep starts from: ``SUGGESTED`` fields the model has, default ranges."""
    fields = searchable_fields(model_name, recipe)
    return {p: default_dimension(p, fields[p]).to_dict() for p in SUGGESTED if p in fields}


def parse_space(
    model_name: str, raw: Mapping[str, Any], recipe: Mapping[str, Any] | None = None
) -> list[Dimension]:
    """Check a space given as {path: {low, high[, log]} | {choices: [...]}} (the YAML file of
    ``trendlab sweep --space``); SweepError names the first wrong path."""
    if not isinstance(raw, Mapping) or not raw:
        raise SweepError("The search space is empty: give at least one field to search.")
    fields = searchable_fields(model_name, recipe)
    dimensions = []
    for path, bounds in raw.items():
        if path not in fields:
            near = ", ".join(sorted(fields))
            raise SweepError(f"{path}: not a field a sweep of {model_name} can search ({near}).")
        item = fields[path]
        if not isinstance(bounds, Mapping):
            raise SweepError(f"{path}: give {{low: ..., high: ...}} or {{choices: [...]}}.")
        unknown = set(bounds) - {"low", "high", "log", "choices"}
        if unknown:
            raise SweepError(f"{path}: unknown key {sorted(unknown)[0]!r}.")
        if "choices" in bounds:
            choices = bounds["choices"]
            if not isinstance(choices, list | tuple) or not choices:
                raise SweepError(f"{path}: choices must be a non-empty list.")
            allowed = item.choices
            wrong = [c for c in choices if (c not in allowed if allowed else not _number(c))]
            if wrong:
                raise SweepError(f"{path}: {wrong[0]!r} is not an allowed value.")
            dimensions.append(Dimension(path, choices=tuple(choices)))
            continue
        if item.choices:
            raise SweepError(f"{path}: a choice field; give choices: [...].")
        low, high, log = bounds.get("low"), bounds.get("high"), bool(bounds.get("log", False))
        if not (_number(low) and _number(high)) or not low < high:
            raise SweepError(f"{path}: low and high must be numbers with low < high.")
        if log and low <= 0:
            raise SweepError(f"{path}: a log scale needs low > 0.")
        integer = isinstance(item.default, int)
        if integer and not (float(low).is_integer() and float(high).is_integer()):
            raise SweepError(f"{path}: an integer field needs whole-number bounds.")
        dimensions.append(Dimension(path, low, high, log, integer))
    return dimensions


class TrialQueue(Protocol):
    """What a sweep needs of the job manager that drives it (``services.jobs.JobManager``):
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


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------------------------
# Starting a sweep


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
    if spec.domain != "market":
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
        _trial_configs(spec, base, {})  # the base itself must be a valid config
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


def _trial_configs(
    spec: Any, base: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[Config, Config]:
    """The model and training configs of a trial: the base with ``params`` laid over it."""
    values: dict[str, dict[str, Any]] = {"model": {}, "training": {}}
    for path, value in params.items():
        part, _, rest = path.partition(".")
        values[part][rest] = value
    model = from_flat(spec.config_class, {**flatten(base["model"]), **values["model"]})
    training = from_flat(
        spec.training_config_class, {**flatten(base["training"]), **values["training"]}
    )
    return model, training


# --------------------------------------------------------------------------------------------
# The Optuna side


_storages: dict[str, Any] = {}
_storages_lock = threading.Lock()


def study_storage(url: str) -> Any:
    """Optuna's RDB storage at ``url``, one per process. Opening it creates Optuna's tables
    when missing; two processes doing that at once collide, so a failed first open is retried
    (the other's tables are there by then)."""
    import optuna
    from sqlalchemy.exc import OperationalError, ProgrammingError

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
        seed = int(sweep.base["training"].get("seed", 0))
        study = self.study(sweep.study, seed)
        asked = len(study.get_trials(deepcopy=False))
        import optuna

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
            path: Dimension(path, **_bounds(bounds)).distribution()
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
                model_config, training = _trial_configs(spec, sweep.base, trial.params)
            except ConfigError as error:  # a combination the configs refuse
                trial.set_user_attr("error", str(error))
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            job_id = self.manager.submit_training(
                model_name=sweep.model_kind,
                dataset_name=dataset.name,
                training=training,
                model_config=model_config,
                baselines=["majority"],
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


def _bounds(bounds: Mapping[str, Any]) -> dict[str, Any]:
    if "choices" in bounds:
        return {"choices": tuple(bounds["choices"])}
    integer = all(isinstance(bounds[k], int) for k in ("low", "high"))
    return {
        "low": bounds["low"],
        "high": bounds["high"],
        "log": bool(bounds.get("log")),
        "integer": integer,
    }


# --------------------------------------------------------------------------------------------
# Plain-value views for the pages, the CLI and the API


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
    import time

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
