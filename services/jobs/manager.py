"""Background training jobs, run by the process that owns the database (the server).

``JobManager.tick()`` does all the work and is cheap to call often (a background thread in
the server calls it every half second):

1. ingest each running job's new ``events.jsonl`` lines: epoch records become metric rows,
   progress goes to ``jobs.progress``, ``finished`` / ``failed`` end the job and its run;
2. notice workers that exited without a final event (an exception outside Python, the OS's
   OOM killer, SIGKILL) and mark their job failed with the exit code and the stderr tail;
3. start queued jobs, oldest first, while fewer than ``max_running`` run.

The server creates its manager at start-up (``start_job_manager``, from api/server.py), so jobs a
dead server left behind are recovered and queued jobs start before anyone opens a page.
Workers run in their own session and outlive a killed server; ``recover`` then ingests what
they wrote and follows them to the end. A worker is signalled only after ``is_worker`` has
checked its command line names the job's folder: a stored PID alone may be anything.

Where a worker runs is the runner's business: a local process (the default), or a Ray task
when ``TRENDLAB_RAY_ADDRESS`` names a cluster (``services.jobs.ray_runner``, imported only then).
Either way the job folder is the channel (events.jsonl out, ``cancel`` and ``prune`` in), so
ingesting, cancelling, failure and resuming are the same code.

Several managers may share a PostgreSQL database (several servers, a CLI sweep): a queued job
is claimed atomically by one of them (``claim_job``), which records itself as the job's
``owner`` and alone ingests its events; ``recover`` takes over only jobs whose owner is gone.

Sweeps (``services.sweeps.study``) ride on the same loop: trials are ordinary jobs; each epoch event
of a trial is reported to its study, and the verdict may write the worker's ``prune`` file.

Workers (``services.jobs.worker``) never open the database; see docs/architecture.md.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.config import Config
from core.devices import DeviceError, resolve_device
from services.access import ensure_writable
from services.jobs.kinds import JOB_KINDS, job_kind_for
from services.jobs.run_owners import HOST, owner_gone, recover_stale_runs
from services.jobs.worker import CANCEL, EVENTS, Worker, launch_local
from services.runs import (
    JobKind,
    checkpoint_path,
    epoch_rows,
    experiment_seeds,
    fail_run,
    run_directory,
)
from services.sweeps.driver import SweepDriver
from storage.data_home import DataHome
from storage.db import StorageError, shared_engine
from storage.models import Job, JobStatus, utcnow
from storage.repository import (
    append_metrics,
    claim_job,
    create_job,
    get_job,
    list_jobs,
    list_metrics,
    request_cancel,
    session_scope,
    set_run_status,
    update_job,
)
from storage.sweeps import mark_trial

# A cancelled worker that has not exited by then is killed. The worker checks the cancel file
# every batch; a busy machine can take a few seconds to write its last checkpoint.
KILL_AFTER_S = 5.0
STDERR_TAIL = 4000
HEARTBEAT_S = 30.0  # how often a manager marks its running jobs as still followed
STALE_AFTER_S = 300.0  # a job of another host not marked for this long is taken over
RAY_ADDRESS_ENV = "TRENDLAB_RAY_ADDRESS"


class JobManager:
    def __init__(
        self,
        *,
        engine: Engine,
        home: DataHome,
        max_running: int = 1,
        ray_address: str | None = None,
    ) -> None:
        """``ray_address`` (default: ``$TRENDLAB_RAY_ADDRESS``) sends workers to that Ray
        cluster ("local" starts one in this process); without it they are local processes."""
        self.engine, self.home, self.max_running = engine, home, max_running
        self.workers: dict[int, Worker] = {}
        self.lock = threading.Lock()
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.last_heartbeat = time.monotonic()
        address = ray_address if ray_address is not None else os.environ.get(RAY_ADDRESS_ENV)
        self.ray = None
        if address:  # Ray is optional and heavy: loaded only when a cluster is named
            from services.jobs.ray_runner import RayRunner

            self.ray = RayRunner(address)
        self.sweeps = SweepDriver(self)

    def job_dir(self, job_id: int) -> Path:
        return self.home.jobs / f"job_{job_id}"

    def submit_training(
        self,
        *,
        model_name: str,
        dataset_name: str,
        training: Config,
        model_config: Config,
        baselines: Sequence[str] | None = None,
        seeds: int = 1,
        sweep: tuple[int, int] | None = None,
        device: str = "auto",
    ) -> int:
        """Queue a job training ``model_name`` (any registered model: a market model, or the
        recommender on a recommender dataset) and its run; returns the job id. With ``seeds``
        > 1, one job per seed, as one experiment; returns the first. When training ends the
        worker evaluates the model (market models beside ``baselines``). ``sweep`` = (sweep
        id, trial number) marks the job as a sweep's trial. ``device`` (auto, cpu, cuda) is
        checked here, so an unusable one is refused before anything is queued, and resolved
        again by the worker that runs the job."""
        ensure_writable("starting training jobs")
        try:
            resolve_device(device)
        except DeviceError as error:
            raise StorageError(str(error)) from None
        kind = job_kind_for(model_name)
        experiment, configs = experiment_seeds(training, seeds)
        run_ids = kind.start(
            engine=self.engine,
            model_name=model_name,
            dataset_name=dataset_name,
            model_config=model_config,
            trainings=configs,
            baselines=baselines,
            experiment=experiment,
        )
        job_ids = []
        for run_id in run_ids:
            with session_scope(self.engine) as session:
                job = create_job(
                    session=session, kind=kind.name, run_id=run_id, request={"device": device}
                )
                if sweep is not None:
                    mark_trial(session=session, job_id=job.id, sweep_id=sweep[0], trial=sweep[1])
                job_ids.append(job.id)
        return job_ids[0]

    def submit_walk_forward(self, *, run_id: int, folds: int = 3) -> int:
        """Queue a walk-forward evaluation of a finished market run: ``folds`` expanding
        windows, each retrained with the run's configs and scored on the next block beside
        the fitted baselines; the result is kept beside the run. Returns the job id."""
        ensure_writable("starting walk-forward evaluations")
        if not 2 <= folds <= 10:
            raise StorageError(f"folds must be 2 to 10, not {folds}.")
        checkpoint_path(engine=self.engine, run_id=run_id)  # a finished market run, or why not
        with session_scope(self.engine) as session:
            job = create_job(
                session=session, kind="walk_forward", run_id=run_id, request={"folds": folds}
            )
            return job.id

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop: a queued job ends now, a running one at its next batch
        (usually well under a second; a worker still running after KILL_AFTER_S is killed)."""
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

    def recover(self, only: Collection[int] | None = None) -> list[int]:
        """At start-up, for each job a previous server left running (of ``only``, when
        given): ingest every event its worker wrote meanwhile (no epoch is lost), follow the
        worker if it still runs, and mark the job interrupted (resumable from last.pt) if it
        is gone without finishing. Returns the jobs marked interrupted."""
        interrupted = []
        with self.lock:
            with session_scope(self.engine) as session:
                left = [
                    (job.id, job.run_id, job.pid)
                    for job in list_jobs(session=session, statuses=[JobStatus.RUNNING])
                    if job.id not in self.workers
                    and orphaned(job)
                    and (only is None or job.id in only)
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
            request = {**self._asked(job), "resume_from": str(last)}  # on the same device
            return create_job(session=session, kind=job.kind, run_id=job.run_id, request=request).id

    def _asked(self, job: Job) -> dict[str, Any]:
        """What ``job`` was asked to do; a job from before schema 6 named its device in the
        job.json its worker read."""
        asked = dict(job.request or {})
        before = self.job_dir(job.id) / "job.json"
        if "device" not in asked and before.exists():
            asked["device"] = json.loads(before.read_text()).get("device", "auto")
        return asked

    def tick(self) -> None:
        with self.lock:
            for job_id in list(self.workers):
                self._ingest_job(job_id)
            self.sweeps.tick()
            self._start_queued()
            self._heartbeat()

    def _heartbeat(self) -> None:
        """Mark the jobs this manager follows as followed (other managers leave them be)."""
        if time.monotonic() - self.last_heartbeat < HEARTBEAT_S:
            return
        self.last_heartbeat = time.monotonic()
        with session_scope(self.engine) as session:
            for job_id in self.workers:
                update_job(session=session, job_id=job_id, heartbeat=True)

    def _start_queued(self) -> None:
        with session_scope(self.engine) as session:
            running = len(list_jobs(session=session, statuses=[JobStatus.RUNNING]))
            queued = sorted(
                list_jobs(session=session, statuses=[JobStatus.QUEUED]), key=lambda j: j.id
            )
        for job in queued[: max(self.max_running - running, 0)]:
            self._launch(job)

    def _launch(self, job: Job) -> None:
        with session_scope(self.engine) as session:
            if not claim_job(session=session, job_id=job.id, owner=self.owner):
                return  # another manager on the same database took it first
        folder = self.job_dir(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            JOB_KINDS[job.kind].prepare(
                self.engine, self.home, job.run_id, folder, dict(job.request or {})
            )
        except StorageError as error:
            self._end(job.id, job.run_id, JobStatus.FAILED, str(error))
            return
        if self.ray is not None:
            worker = Worker(0, folder, remote=self.ray.launch(folder))
        else:
            worker = Worker(0, folder, launch_local(folder))
            worker.pid = worker.process.pid
        if job.sweep_id is not None:
            worker.sweep = (job.sweep_id, job.trial)
        self.workers[job.id] = worker
        if worker.pid:
            with session_scope(self.engine) as session:
                update_job(session=session, job_id=job.id, pid=worker.pid, heartbeat=True)

    def _ingest_job(self, job_id: int, *, recovering: bool = False) -> JobStatus | None:
        """Take a worker's new events; end its job when it finished or is gone. Returns the
        status the job ended with, or None while it runs."""
        worker = self.workers[job_id]
        # the exit code first: a worker that had exited before its events were read wrote
        # them all, while one that exits during the (slow, under load) ingestion below may
        # have written its last events after the read; asked afterwards, that exit looked
        # like a death before the finish (a 100-epoch job "failed" under 20 clients)
        code = worker.exit_code()
        events = self._new_events(job_id)
        with session_scope(self.engine) as session:
            row = get_job(session=session, job_id=job_id)
            run_id, kind = row.run_id, JOB_KINDS[row.kind]
            if row.sweep_id is not None:
                worker.sweep = (row.sweep_id, row.trial)
        final = None
        for event in events:
            if event["type"] == "epoch" and kind.trains_run:
                rows = epoch_rows(event["record"])
                if rows and rows[0].epoch in worker.stored_epochs:
                    continue  # ingested before a restart
                with session_scope(self.engine) as session:
                    append_metrics(session=session, run_id=run_id, rows=rows)
                worker.stored_epochs.update(row.epoch for row in rows)
                if worker.sweep is not None:
                    self.sweeps.report(job_id, worker, event["record"])
            elif event["type"] == "started" and worker.remote is not None:
                worker.pid = int(event["pid"])  # where Ray placed it
                with session_scope(self.engine) as session:
                    update_job(session=session, job_id=job_id, pid=worker.pid)
            elif event["type"] == "progress":
                with session_scope(self.engine) as session:
                    update_job(session=session, job_id=job_id, progress=event, heartbeat=True)
            elif event["type"] in ("finished", "failed"):
                final = event
        if final is not None:
            if worker.process is not None:
                worker.process.wait()
            return self._finish(job_id, run_id, kind, final)
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

    def _finish(self, job_id: int, run_id: int, kind: JobKind, event: dict[str, Any]) -> JobStatus:
        if event["type"] == "failed":
            self._end(job_id, run_id, JobStatus.FAILED, event["error"])
            return JobStatus.FAILED
        summary = event["summary"]
        kind.finish(self.engine, self.job_dir(job_id), summary)
        cancelled = summary.get("stopped_because") == "cancelled"
        status = JobStatus.CANCELLED if cancelled else JobStatus.SUCCEEDED
        with session_scope(self.engine) as session:
            update_job(session=session, job_id=job_id, status=status)
        worker = self.workers.pop(job_id, None)
        if worker is not None and worker.sweep is not None:
            self.sweeps.finished(worker.sweep, status, summary)
        return status

    def _died(self, job_id: int, run_id: int, code: int, worker: Worker) -> JobStatus:
        if worker.cancelled_at:
            self._end(job_id, run_id, JobStatus.CANCELLED, "Cancelled; the worker was stopped.")
            return JobStatus.CANCELLED
        reason = worker.exit_reason(code)
        log = self.job_dir(job_id) / "stderr.log"
        tail = log.read_bytes()[-STDERR_TAIL:] if log.exists() else b""
        message = f"The worker exited with {reason} before finishing."
        if tail.strip():
            message += "\n" + tail.decode("utf-8", "replace")
        self._end(job_id, run_id, JobStatus.FAILED, message)
        return JobStatus.FAILED

    def _end(self, job_id: int, run_id: int, status: JobStatus, error: str) -> None:
        with session_scope(self.engine) as session:
            job = update_job(session=session, job_id=job_id, status=status, error=error)
            sweep = (job.sweep_id, job.trial) if job.sweep_id is not None else None
            trains_run = JOB_KINDS[job.kind].trains_run
        if trains_run:  # a walk-forward that fails leaves its finished run as it was
            fail_run(engine=self.engine, run_id=run_id, error=error, status=status)
        self.workers.pop(job_id, None)
        if sweep is not None:
            self.sweeps.finished(sweep, status, {"error": error})


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
            recover_stale_runs(engine=manager.engine)  # CLI runs of a killed process
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


def orphaned(job: Job) -> bool:
    """Whether no live manager follows ``job``: see ``owner_gone``; an owner on another host
    is gone once it has not marked the job for ``STALE_AFTER_S``."""
    heartbeat = job.heartbeat_at or job.started_at
    stale = heartbeat is None or (utcnow() - heartbeat).total_seconds() > STALE_AFTER_S
    return owner_gone(job.owner, elsewhere_gone=stale)
