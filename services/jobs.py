"""Background training jobs, run by the process that owns the database (the server).

``JobManager.tick()`` does all the work and is cheap to call often (a background thread in
the server calls it every half second):

1. ingest each running job's new ``events.jsonl`` lines: epoch records become metric rows,
   progress goes to ``jobs.progress``, ``finished`` / ``failed`` end the job and its run;
2. notice workers that exited without a final event (an exception outside Python, the OS's
   OOM killer, SIGKILL) and mark their job failed with the exit code and the stderr tail;
3. start queued jobs, oldest first, while fewer than ``max_running`` run.

The server creates its manager at start-up (``start_job_manager``, from server.py), so jobs a
dead server left behind are recovered and queued jobs start before anyone opens a page.
Workers run in their own session and outlive a killed server; ``recover`` then ingests what
they wrote and follows them to the end. A worker is signalled only after ``is_worker`` has
checked its command line names the job's folder: a stored PID alone may be anything.

Workers (``services.worker``) never open the database; see docs/architecture.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.config import Config
from core.market.evaluation import BASELINES
from services.access import ensure_writable
from services.job_kinds import JOB_KINDS, job_kind_for
from services.runs import (
    epoch_rows,
    fail_run,
    run_directory,
)
from services.worker import CANCEL, EVENTS
from storage.db import StorageError, shared_engine
from storage.home import DataHome
from storage.models import Job, JobStatus
from storage.repository import (
    append_metrics,
    create_job,
    get_job,
    list_jobs,
    list_metrics,
    request_cancel,
    session_scope,
    set_run_status,
    update_job,
)

KILL_AFTER_S = 1.5  # a cancelled worker that has not exited by then is killed
STDERR_TAIL = 4000


@dataclass
class Worker:
    """A worker process the manager follows: its own child, or an orphan adopted at start-up
    (left running by a server that died; not our child, so its exit code is unknown)."""

    pid: int
    folder: Path
    process: subprocess.Popen | None = None
    offset: int = 0
    """Bytes of events.jsonl already ingested."""
    stored_epochs: set[int] = field(default_factory=set)
    """Epochs whose metric rows are in the database (read again after a restart)."""
    cancelled_at: float | None = None

    def exit_code(self) -> int | None:
        """None while it runs; the code (negative: the signal) once it exited; 0 for an
        orphan that is gone, whose code nobody can know."""
        if self.process is not None:
            return self.process.poll()
        return None if is_worker(self.pid, self.folder) else 0

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
        elif is_worker(self.pid, self.folder):  # never signal a process that is not ours
            os.kill(self.pid, signal.SIGKILL)


class JobManager:
    def __init__(self, *, engine: Engine, home: DataHome, max_running: int = 1) -> None:
        self.engine, self.home, self.max_running = engine, home, max_running
        self.workers: dict[int, Worker] = {}
        self.lock = threading.Lock()

    def job_dir(self, job_id: int) -> Path:
        return self.home.jobs / f"job_{job_id}"

    # ------------------------------------------------------------------------ submitting
    def submit_training(
        self,
        *,
        model_name: str,
        dataset_name: str,
        training: Config,
        model_config: Config,
        baselines: Sequence[str] = BASELINES,
    ) -> int:
        """Queue a job training ``model_name`` (any registered model: a market model, or the
        recommender on a recommender dataset) and its run; returns the job id. When training
        ends the worker evaluates the model (market models beside ``baselines``)."""
        ensure_writable("starting training jobs")
        kind = job_kind_for(model_name)
        run_id = kind.start(
            self.engine, model_name, dataset_name, model_config, training, baselines
        )
        with session_scope(self.engine) as session:
            return create_job(session=session, kind=kind.name, run_id=run_id).id

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop: a queued job ends now, a running one within about a second."""
        ensure_writable("cancelling jobs")
        with self.lock, session_scope(self.engine) as session:
            job = get_job(session=session, job_id=job_id)
            if job is None:
                raise StorageError(f"No job {job_id}.")
            if JobStatus(job.status).finished:
                return
            request_cancel(session=session, job_id=job_id)
            if job.status == JobStatus.QUEUED:
                update_job(session=session, job_id=job_id, status=JobStatus.CANCELLED)
                set_run_status(session=session, run_id=job.run_id, status=JobStatus.CANCELLED)
                return
            folder = self.job_dir(job_id)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / CANCEL).touch()
            if job_id in self.workers:
                self.workers[job_id].cancelled_at = time.monotonic()

    def recover(self) -> list[int]:
        """At start-up, for each job a previous server left running: ingest every event its
        worker wrote meanwhile (no epoch is lost), follow the worker if it still runs, and
        mark the job interrupted (resumable from last.pt) if it is gone without finishing.
        Returns the jobs marked interrupted."""
        interrupted = []
        with self.lock:
            with session_scope(self.engine) as session:
                left = [
                    (job.id, job.run_id, job.pid)
                    for job in list_jobs(session=session, statuses=[JobStatus.RUNNING])
                    if job.id not in self.workers
                ]
            for job_id, run_id, pid in left:
                with session_scope(self.engine) as session:
                    stored = {m.epoch for m in list_metrics(session=session, run_id=run_id)}
                self.workers[job_id] = Worker(pid or 0, self.job_dir(job_id), stored_epochs=stored)
                if self._ingest_job(job_id, recovering=True) is JobStatus.INTERRUPTED:
                    interrupted.append(job_id)
        return interrupted

    def resume(self, job_id: int) -> int:
        """Queue a new job that continues an interrupted (or cancelled) one from last.pt."""
        ensure_writable("resuming jobs")
        with session_scope(self.engine) as session:
            job = get_job(session=session, job_id=job_id)
            if job is None or job.status not in (JobStatus.INTERRUPTED, JobStatus.CANCELLED):
                raise StorageError(f"Job {job_id} is not interrupted or cancelled.")
            if not JOB_KINDS[job.kind].resumable:
                raise StorageError(f"{job.kind} jobs start again rather than resume.")
            last = run_directory(self.home, job.run_id) / "last.pt"
            if not last.exists():
                raise StorageError(f"Job {job_id} saved no checkpoint to resume from.")
            set_run_status(session=session, run_id=job.run_id, status=JobStatus.QUEUED)
            new = create_job(session=session, kind=job.kind, run_id=job.run_id)
            update_job(session=session, job_id=new.id, progress={"resume_from": str(last)})
            return new.id

    # ------------------------------------------------------------------------ the loop
    def tick(self) -> None:
        with self.lock:
            for job_id in list(self.workers):
                self._ingest_job(job_id)
            self._start_queued()

    def _start_queued(self) -> None:
        with session_scope(self.engine) as session:
            running = len(list_jobs(session=session, statuses=[JobStatus.RUNNING]))
            queued = sorted(
                list_jobs(session=session, statuses=[JobStatus.QUEUED]), key=lambda j: j.id
            )
        for job in queued[: max(self.max_running - running, 0)]:
            self._launch(job)

    def _launch(self, job: Job) -> None:
        folder = self.job_dir(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            JOB_KINDS[job.kind].prepare(
                self.engine, self.home, job.run_id, folder, dict(job.progress or {})
            )
        except StorageError as error:
            self._end(job.id, job.run_id, JobStatus.FAILED, str(error))
            return
        stderr = (folder / "stderr.log").open("wb")
        process = subprocess.Popen(
            # The job folder in the command line is the worker's identity (see is_worker).
            [sys.executable, "-m", "services.worker", str(folder)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=Path(__file__).resolve().parents[1],
            start_new_session=True,  # closing the browser or the page never signals it
        )
        self.workers[job.id] = Worker(process.pid, folder, process)
        with session_scope(self.engine) as session:
            update_job(
                session=session,
                job_id=job.id,
                status=JobStatus.RUNNING,
                pid=process.pid,
                heartbeat=True,
            )

    def _ingest_job(self, job_id: int, *, recovering: bool = False) -> JobStatus | None:
        """Take a worker's new events; end its job when it finished or is gone. Returns the
        status the job ended with, or None while it runs."""
        worker = self.workers[job_id]
        events = self._new_events(job_id)
        with session_scope(self.engine) as session:
            run_id = get_job(session=session, job_id=job_id).run_id
        final = None
        for event in events:
            if event["type"] == "epoch":
                rows = epoch_rows(event["record"])
                if rows and rows[0].epoch in worker.stored_epochs:
                    continue  # ingested before a restart
                with session_scope(self.engine) as session:
                    append_metrics(session=session, run_id=run_id, rows=rows)
                worker.stored_epochs.update(row.epoch for row in rows)
            elif event["type"] == "progress":
                with session_scope(self.engine) as session:
                    update_job(session=session, job_id=job_id, progress=event, heartbeat=True)
            elif event["type"] in ("finished", "failed"):
                final = event
        code = worker.exit_code()
        if final is not None:
            if worker.process is not None:
                worker.process.wait()
            return self._finish(job_id, run_id, final)
        if code is not None:
            if recovering:  # the worker died with the old server: resumable
                self._end(
                    job_id,
                    run_id,
                    JobStatus.INTERRUPTED,
                    "The server stopped while this job ran; resume it to go on.",
                )
                return JobStatus.INTERRUPTED
            return self._died(job_id, run_id, code, worker)
        if worker.cancelled_at and time.monotonic() - worker.cancelled_at > KILL_AFTER_S:
            worker.kill()
        return None

    def _new_events(self, job_id: int) -> list[dict[str, Any]]:
        worker = self.workers[job_id]
        path = self.job_dir(job_id) / EVENTS
        if not path.exists():
            return []
        with path.open("rb") as handle:
            handle.seek(worker.offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]  # a half-written last line waits
        worker.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def _finish(self, job_id: int, run_id: int, event: dict[str, Any]) -> JobStatus:
        if event["type"] == "failed":
            self._end(job_id, run_id, JobStatus.FAILED, event["error"])
            return JobStatus.FAILED
        summary = event["summary"]
        folder = self.job_dir(job_id)
        kind = json.loads((folder / "job.json").read_text())["kind"]
        JOB_KINDS[kind].finish(self.engine, folder, summary)
        cancelled = summary.get("stopped_because") == "cancelled"
        status = JobStatus.CANCELLED if cancelled else JobStatus.SUCCEEDED
        with session_scope(self.engine) as session:
            update_job(session=session, job_id=job_id, status=status)
        self.workers.pop(job_id, None)
        return status

    def _died(self, job_id: int, run_id: int, code: int, worker: Worker) -> JobStatus:
        if worker.cancelled_at:
            self._end(job_id, run_id, JobStatus.CANCELLED, "Cancelled; the worker was stopped.")
            return JobStatus.CANCELLED
        if worker.process is None:
            reason = "an unknown status (it was adopted after a server restart)"
        elif code < 0:
            reason = f"signal {-code} ({signal.Signals(-code).name})"
        else:
            reason = f"code {code}"
        log = self.job_dir(job_id) / "stderr.log"
        tail = log.read_bytes()[-STDERR_TAIL:] if log.exists() else b""
        message = f"The worker exited with {reason} before finishing."
        if tail.strip():
            message += "\n" + tail.decode("utf-8", "replace")
        self._end(job_id, run_id, JobStatus.FAILED, message)
        return JobStatus.FAILED

    def _end(self, job_id: int, run_id: int, status: JobStatus, error: str) -> None:
        fail_run(engine=self.engine, run_id=run_id, error=error, status=status)
        with session_scope(self.engine) as session:
            update_job(session=session, job_id=job_id, status=status, error=error)
        self.workers.pop(job_id, None)


_managers: dict[str, JobManager] = {}
_managers_lock = threading.Lock()


def start_job_manager(home: DataHome) -> JobManager:
    """The server's one job manager for ``home``, created on the first call: it recovers
    what a previous server left running, then (unless TRENDLAB_JOB_RUNNER=0, as in tests
    that tick by hand) starts the thread that ingests progress and launches queued jobs."""
    with _managers_lock:
        if str(home.root) not in _managers:
            manager = JobManager(
                engine=shared_engine(home.database_url),
                home=home,
                max_running=int(os.environ.get("TRENDLAB_MAX_JOBS", "1")),
            )
            manager.recover()
            if os.environ.get("TRENDLAB_JOB_RUNNER", "1") != "0":
                JobRunner(manager).start()
            _managers[str(home.root)] = manager
        return _managers[str(home.root)]


class JobRunner(threading.Thread):
    """Calls ``manager.tick()`` every ``interval`` seconds until stopped (server side)."""

    def __init__(self, manager: JobManager, interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="trendlab-jobs")
        self.manager, self.interval = manager, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.manager.tick()
            except Exception as error:  # keep the loop alive; the next tick retries
                print(f"job runner: {type(error).__name__}: {error}", file=sys.stderr)

    def stop(self) -> None:
        self.stopped.set()


def is_worker(pid: int, folder: Path) -> bool:
    """True when ``pid`` is alive and is the worker of ``folder`` (its command line names the
    job folder). A PID alone is not enough: after a reboot it may belong to anything."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:  # gone, or no /proc (then nothing is ever signalled)
        return False
    return str(folder).encode() in command
