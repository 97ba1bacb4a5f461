"""What every run shares, whatever its domain: the run folder, the callback that writes each
epoch's metrics, failing a run, checks that a run's recorded files are still the bytes that
were recorded, and ``JobKind``, the shape of a background training job.

Each domain's lifecycle builds on these: ``services.market.runs`` and
``services.market.evaluation`` (market models), ``services.recsys.runs`` (the recommender).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.config import Config
from core.files import file_sha256
from core.trainer import Callback, Trainer
from services.jobs.run_owners import stop_received, stop_signals_held
from storage.data_home import DataHome
from storage.db import StorageError, interrupted
from storage.models import Artifact, Dataset, JobStatus, Run
from storage.repository import (
    MetricRow,
    add_artifact,
    append_metrics,
    get_dataset_by_id,
    get_run,
    list_artifacts,
    session_scope,
    set_run_status,
)


class MetricWriter:
    """Trainer callback: each epoch's record becomes metric rows of the run."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        self.engine, self.run_id = engine, run_id

    def on_batch_end(self, trainer: Trainer, step: int, components: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        with session_scope(self.engine) as session:
            append_metrics(session=session, run_id=self.run_id, rows=epoch_rows(record))


def epoch_rows(record: dict[str, float]) -> list[MetricRow]:
    """'train/mse_7d' -> split train, name mse_7d; unprefixed values (lr) -> split 'epoch'."""
    epoch = int(record["epoch"])
    rows = []
    for key, value in record.items():
        if key == "epoch":
            continue
        split, _, name = key.rpartition("/")
        rows.append(MetricRow(epoch=epoch, split=split or "epoch", name=name, value=float(value)))
    return rows


def run_directory(home: DataHome, run_id: int) -> Path:
    return home.checkpoints / f"run_{run_id}"


def fail_run(*, engine: Engine, run_id: int, error: str, status: JobStatus) -> None:
    with session_scope(engine) as session:
        set_run_status(
            session=session, run_id=run_id, status=status, summary_metrics={"error": error}
        )


def record_finished_run(
    *,
    engine: Engine,
    run_id: int,
    folder: Path,
    files: Iterable[tuple[str, str]],
    summary: dict[str, Any],
) -> None:
    """The run's files (kind, file name in ``folder``) that exist, recorded as artifacts with
    size and SHA-256, and its final status with the summary: cancelled when training was
    stopped, succeeded otherwise."""
    cancelled = summary.get("stopped_because") == "cancelled"
    with session_scope(engine) as session:
        for kind, name in files:
            if (folder / name).exists():
                add_artifact(session=session, run_id=run_id, kind=kind, path=folder / name)
        set_run_status(
            session=session,
            run_id=run_id,
            status=JobStatus.CANCELLED if cancelled else JobStatus.SUCCEEDED,
            summary_metrics=summary,
        )


def train_here(
    *,
    engine: Engine,
    run_id: int,
    train: Callable[[], dict[str, Any]],
    finish: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Train a created run in this process (the CLI): ``train`` gives the summary and
    ``finish`` records it. A failure leaves the run failed, Ctrl-C or SIGTERM
    (``cli.Terminated``) cancelled; a stop that lands while the outcome is written waits for
    the write."""
    try:
        summary = train()
    except BaseException as error:
        stopped = interrupted(error) or stop_received()
        with stop_signals_held():
            fail_run(
                engine=engine,
                run_id=run_id,
                error=f"{type(error).__name__}: {error}",
                status=JobStatus.CANCELLED if stopped else JobStatus.FAILED,
            )
        raise
    with stop_signals_held():
        finish(summary)
    return summary


@functools.lru_cache(maxsize=1024)
def _digest(path: str, modified_ns: int, size: int) -> str:
    """SHA-256 of a file, remembered while its modification time and size stay the same."""
    return file_sha256(Path(path))


def artifact_problem(artifact: Artifact) -> str | None:
    """Why a recorded file cannot be trusted (missing, or not the bytes that were recorded)."""
    path = Path(artifact.path)
    shown = DataHome.from_env().relative(path)
    if not path.is_file():
        return f"{artifact.kind} file {shown} is missing"
    stat = path.stat()
    if stat.st_size != artifact.bytes or _digest(str(path), stat.st_mtime_ns, stat.st_size) != (
        artifact.sha256
    ):
        return f"{artifact.kind} file {shown} is not the file training wrote (corrupt or replaced)"
    return None


def checkpoint_problems(*, engine: Engine) -> dict[int, str]:
    """Run id -> what is wrong with its newest checkpoint, for every run whose checkpoint
    is missing or altered (runs that never wrote one are not listed)."""
    with session_scope(engine) as session:
        newest = {a.run_id: a for a in list_artifacts(session=session, kind="checkpoint")}
    problems = {run_id: artifact_problem(artifact) for run_id, artifact in newest.items()}
    return {run_id: problem for run_id, problem in problems.items() if problem}


def checkpoint_problem(*, engine: Engine, run_id: int) -> str | None:
    with session_scope(engine) as session:
        recorded = list_artifacts(session=session, run_id=run_id, kind="checkpoint")
    if not recorded:
        return "it has no checkpoint (it did not finish training)"
    return artifact_problem(recorded[-1])


def checkpoint_path(*, engine: Engine, run_id: int) -> Path:
    with session_scope(engine) as session:
        if get_run(session=session, run_id=run_id) is None:
            raise StorageError(f"No run {run_id}.")
        paths = [
            a.path for a in list_artifacts(session=session, run_id=run_id) if a.kind == "checkpoint"
        ]
    if not paths:
        raise StorageError(f"Run {run_id} has no checkpoint (it did not finish training).")
    return Path(paths[-1])


class UnknownRun(StorageError):
    """No run has the id asked for."""


def run_and_dataset(*, session: Session, run_id: int) -> tuple[Run, Dataset]:
    """The run and its dataset rows; StorageError when either is gone."""
    run = get_run(session=session, run_id=run_id)
    if run is None:
        raise StorageError(f"No run {run_id}.")
    dataset = get_dataset_by_id(session=session, dataset_id=run.dataset_id)
    if dataset is None:
        raise StorageError(f"Run {run_id}'s dataset no longer exists.")
    return run, dataset


StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class JobKind:
    """A kind of background job (a ``jobs`` row's ``kind``): the job manager starts, prepares
    and finishes it, the worker runs it; each domain's run module defines its own."""

    name: str
    start: Callable[..., list[int]]
    """Keywords engine, model_name, dataset_name, model_config, trainings (one per seed),
    baselines and experiment -> run ids: the run rows, queued, after one check of the
    dataset."""
    prepare: Callable[[Engine, DataHome, int, Path, dict[str, Any]], None]
    """(engine, home, run_id, folder, the job's request): write job.json and the data files a
    worker needs into ``folder`` (the worker never opens the database); marks the run
    running."""
    run: Callable[[Path, Sequence[Callback], StopCheck, str], dict[str, Any]]
    """(folder, callbacks, should_stop, device) -> the run's summary: the worker's part, on
    the device the worker resolved."""
    finish: Callable[[Engine, Path, dict[str, Any]], None]
    """(engine, folder, summary): record the run's files and final status."""
    resumable: bool
    """Whether an interrupted job can go on from its last checkpoint."""
    trains_run: bool = True
    """The job trains its run: its epochs are the run's curves and its end is the run's
    status. False for a job that studies a finished run (walk-forward) and leaves it as it
    is."""


def experiment_seeds(training: Config, seeds: int) -> tuple[str | None, list[Config]]:
    """An experiment of ``seeds`` runs: its id (None for a single run) and one training config
    per run, seeded ``training.seed``, ``training.seed + 1``, ..."""
    if seeds < 1:
        raise StorageError(f"seeds must be at least 1, not {seeds}.")
    configs = [replace(training, seed=training.seed + i) for i in range(seeds)]
    return (f"exp-{uuid.uuid4().hex[:8]}" if seeds > 1 else None), configs
