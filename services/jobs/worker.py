"""A training worker: one OS process per job, which never opens the database.

    python -m services.jobs.worker JOB_DIR

``JOB_DIR`` holds ``job.json`` (the job's kind and the run's inputs) and the data files the
server wrote for it. The worker runs the kind's ``run`` (``services.jobs.kinds``) and appends
one JSON object per line to ``events.jsonl``: ``started``, ``progress`` (every few batches),
``epoch`` (the trainer's record), then ``finished`` (with the summary) or ``failed`` (with
the traceback).
The server ingests the file; a ``cancel`` file in ``JOB_DIR`` asks the worker to stop, which
it notices within one training batch. A ``prune`` file (a sweep's verdict, written by the
server after it reported an epoch's validation loss to the study) stops training at the end of
the epoch under way, ``stopped_because`` = "pruned".

The same ``main`` runs in a local process (``python -m services.jobs.worker``) or inside a Ray
task (``services.jobs.ray_runner``); either way the job folder is the only channel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.jobs.run_owners import is_worker

EVENTS = "events.jsonl"
CANCEL = "cancel"
PRUNE = "prune"
PROGRESS_EVERY_S = 0.5


class EventLog:
    """Appends events as JSON lines, flushed at once so the server sees them promptly."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open("a", encoding="utf-8")

    def write(self, kind: str, **fields: Any) -> None:
        fields = {"type": kind, "time": time.time(), **fields}
        self.handle.write(json.dumps(fields, default=str) + "\n")
        self.handle.flush()


class ProgressEvents:
    """Trainer callback: progress (epoch, batch, ETA) and every epoch record as events.

    Epochs and batches per epoch are the trainer's own. The ETA counts the batches left from
    where this process started, so a job resumed at epoch 10 of 12 is two epochs from the
    end, at the pace measured since it resumed."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.started = time.time()
        self.last = 0.0
        self.done = 0
        self.stage: dict[str, int] = {}

    def on_stage(self, stage: str, index: int, total: int) -> None:
        """A job of several trainings (a walk-forward's folds) starts its ``index``-th of
        ``total``: said at once, and carried by every later progress event."""
        self.stage = {stage: index, f"{stage}s": total}
        self.log.write("progress", **self.stage)

    def on_phase(self, phase: str) -> None:
        """A step with no epochs (preparing, evaluating) begins: said at once, in words,
        with whether training has run (the share done is then all of it)."""
        self.log.write("progress", phase=phase, trained=self.done > 0, **self.stage)

    def on_batch_end(self, trainer: Any, step: int, components: dict[str, float]) -> None:
        self.done += 1
        now = time.time()
        if now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        epochs, batches = trainer.epochs, trainer.batches_per_epoch
        left = (epochs - trainer.epoch - 1) * batches + max(batches - step - 1, 0)
        rate = self.done / max(now - self.started, 1e-9)
        self.log.write(
            "progress",
            epoch=trainer.epoch + 1,
            epochs=epochs,
            batch=step + 1,
            batches=batches,
            eta_s=max(left, 0) / rate if rate > 0 else None,
            loss=components.get("total"),
            **self.stage,
        )

    def on_epoch_end(self, trainer: Any, record: dict[str, float]) -> None:
        self.log.write("epoch", record=record)


class PruneCheck:
    """Trainer callback: stop after this epoch once the server has written the ``prune``
    verdict (it compares each epoch's validation loss with the sweep's other trials)."""

    def __init__(self, job_dir: Path) -> None:
        self.verdict = job_dir / PRUNE

    def on_batch_end(self, trainer: Any, step: int, components: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer: Any, record: dict[str, float]) -> None:
        if self.verdict.exists():
            trainer.request_stop("pruned")


def main(job_dir: Path) -> int:
    """Run the job in ``job_dir`` as its kind says (``services.jobs.kinds``), on the device
    its job.json names (``auto`` when it names none), resolved here once."""
    log = EventLog(job_dir / EVENTS)
    log.write("started", pid=os.getpid())
    try:
        # Loaded after the "started" event: the job kinds bring torch and the models (seconds).
        from core.devices import resolve_device
        from services.jobs.kinds import JOB_KINDS

        job = json.loads((job_dir / "job.json").read_text())
        device = resolve_device(job.get("device", "auto"))  # once, for the whole job
        summary = JOB_KINDS[job["kind"]].run(
            job_dir,
            [ProgressEvents(log), PruneCheck(job_dir)],
            lambda: (job_dir / CANCEL).exists(),
            str(device),
        )
    except BaseException:  # report everything, including KeyboardInterrupt
        log.write("failed", error=traceback.format_exc(limit=20))
        return 1
    log.write("finished", summary=summary)
    return 0


@dataclass
class Worker:
    """A worker process the manager follows: its own child, or an orphan adopted at start-up
    (left running by a server that died; not our child, so its exit code is unknown)."""

    pid: int
    folder: Path
    process: subprocess.Popen | None = None
    remote: Any = None
    """The Ray task running it (``services.jobs.ray_runner.RayTask``), when it runs on Ray."""
    offset: int = 0
    """Bytes of events.jsonl already ingested."""
    stored_epochs: set[int] = field(default_factory=set)
    """Epochs whose metric rows are in the database (read again after a restart)."""
    cancelled_at: float | None = None
    sweep: tuple[int, int] | None = None
    """(sweep id, trial number) when the job is a sweep's trial."""

    def exit_code(self) -> int | None:
        """None while it runs; the code (negative: the signal) once it exited; 0 for an
        orphan that is gone, whose code nobody can know."""
        if self.remote is not None:
            return self.remote.exit_code()
        if self.process is not None:
            return self.process.poll()
        return None if is_worker(self.pid, self.folder) else 0

    def kill(self) -> None:
        if self.remote is not None:
            self.remote.kill()
        elif self.process is not None:
            self.process.kill()
        elif is_worker(self.pid, self.folder):  # never signal a process that is not ours
            os.kill(self.pid, signal.SIGKILL)

    def exit_reason(self, code: int) -> str:
        """How the worker ended, for the failed job's message."""
        if self.remote is not None:
            return self.remote.reason(code)
        if self.process is None:
            return "an unknown status (it was adopted after a server restart)"
        if code < 0:
            return f"signal {-code} ({signal.Signals(-code).name})"
        return f"code {code}"


def launch_local(folder: Path) -> subprocess.Popen:
    """Start ``python -m services.jobs.worker FOLDER`` in its own session."""
    stderr = (folder / "stderr.log").open("wb")
    return subprocess.Popen(
        # The job folder in the command line is the worker's identity (see is_worker).
        [sys.executable, "-m", "services.jobs.worker", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        cwd=Path(__file__).resolve().parents[1],
        start_new_session=True,  # closing the browser or the page never signals it
    )


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
