"""Background training jobs, run by the process that owns the database (the server).

``JobManager.tick()`` does all the work and is cheap to call often (a background thread in
the server calls it every half second):

1. ingest each running job's new ``events.jsonl`` lines: epoch records become metric rows,
   progress goes to ``jobs.progress``, ``finished`` / ``failed`` end the job and its run;
2. notice workers that exited without a final event (an exception outside Python, the OS's
   OOM killer, SIGKILL) and mark their job failed with the exit code and the stderr tail;
3. start queued jobs, oldest first, while fewer than ``max_running`` run.

Workers (``storage.worker``) never open the database; see docs/architecture.md.
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
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.config import Config
from core.evaluation import BASELINES
from storage.db import StorageError
from storage.home import DataHome
from storage.models import Job, JobStatus
from storage.repository import (
    append_metrics,
    create_job,
    get_job,
    get_run,
    list_jobs,
    request_cancel,
    session_scope,
    set_run_status,
    update_job,
)
from storage.runs import (
    RunInputs,
    epoch_rows,
    fail_run,
    finish_run,
    run_directory,
    run_inputs,
    start_run,
)
from storage.worker import CANCEL, EVENTS

RECOMMENDER_JOB = "train_recommender"
KILL_AFTER_S = 1.5  # a cancelled worker that has not exited by then is killed
STDERR_TAIL = 4000


class JobManager:
    def __init__(self, *, engine: Engine, home: DataHome, max_running: int = 1) -> None:
        self.engine, self.home, self.max_running = engine, home, max_running
        self.processes: dict[int, subprocess.Popen] = {}
        self.offsets: dict[int, int] = {}
        self.cancelled_at: dict[int, float] = {}
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
        """Queue a training job (and its run); returns the job id. When training ends the
        worker evaluates the model beside ``baselines`` on the test rows."""
        run_id = start_run(
            engine=self.engine,
            model_name=model_name,
            dataset_name=dataset_name,
            training=training,
            model_config=model_config,
            baselines=baselines,
        )
        with session_scope(self.engine) as session:
            return create_job(session=session, kind="train", run_id=run_id).id

    def submit_recommender_training(self, *, dataset_name: str, config: Config) -> int:
        """Queue training of the two-tower recommender on a stored dataset; returns the job."""
        from storage.recsys import start_recsys_run

        run_id = start_recsys_run(engine=self.engine, dataset_name=dataset_name, config=config)
        with session_scope(self.engine) as session:
            return create_job(session=session, kind=RECOMMENDER_JOB, run_id=run_id).id

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop: a queued job ends now, a running one within about a second."""
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
        self.cancelled_at[job_id] = time.monotonic()

    def recover(self) -> list[int]:
        """At start-up: jobs a previous server left running are marked interrupted."""
        interrupted = []
        with session_scope(self.engine) as session:
            for job in list_jobs(session=session, statuses=[JobStatus.RUNNING]):
                if job.id in self.processes:
                    continue
                if job.pid and _alive(job.pid):
                    os.kill(job.pid, signal.SIGKILL)  # an orphan nobody will ingest
                update_job(
                    session=session,
                    job_id=job.id,
                    status=JobStatus.INTERRUPTED,
                    error="The server stopped while this job ran; resume it to go on.",
                )
                set_run_status(session=session, run_id=job.run_id, status=JobStatus.INTERRUPTED)
                interrupted.append(job.id)
        return interrupted

    def resume(self, job_id: int) -> int:
        """Queue a new job that continues an interrupted (or cancelled) one from last.pt."""
        with session_scope(self.engine) as session:
            job = get_job(session=session, job_id=job_id)
            if job is None or job.status not in (JobStatus.INTERRUPTED, JobStatus.CANCELLED):
                raise StorageError(f"Job {job_id} is not interrupted or cancelled.")
            if job.kind == RECOMMENDER_JOB:
                raise StorageError("Recommender jobs start again rather than resume.")
            last = run_directory(self.home, job.run_id) / "last.pt"
            if not last.exists():
                raise StorageError(f"Job {job_id} saved no checkpoint to resume from.")
            set_run_status(session=session, run_id=job.run_id, status=JobStatus.QUEUED)
            new = create_job(session=session, kind="train", run_id=job.run_id)
            update_job(session=session, job_id=new.id, progress={"resume_from": str(last)})
            return new.id

    # ------------------------------------------------------------------------ the loop
    def tick(self) -> None:
        with self.lock:
            self._ingest()
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
            if job.kind == RECOMMENDER_JOB:
                self._write_recommender_job(job, folder)
            else:
                inputs, frame = run_inputs(engine=self.engine, home=self.home, run_id=job.run_id)
                inputs.resume_from = (job.progress or {}).get("resume_from")
                frame.to_parquet(folder / "dataset.parquet")
                (folder / "job.json").write_text(json.dumps({"inputs": inputs.to_dict()}))
        except StorageError as error:
            self._end(job.id, job.run_id, JobStatus.FAILED, str(error))
            return
        stderr = (folder / "stderr.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "storage.worker", str(folder)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=Path(__file__).resolve().parents[1],
            start_new_session=True,  # closing the browser or the page never signals it
        )
        self.processes[job.id] = process
        self.offsets[job.id] = 0
        with session_scope(self.engine) as session:
            update_job(
                session=session,
                job_id=job.id,
                status=JobStatus.RUNNING,
                pid=process.pid,
                heartbeat=True,
            )

    def _write_recommender_job(self, job: Job, folder: Path) -> None:
        """users / items / interactions as Parquet and the config, for the worker."""
        from storage.recsys import load_recsys_data

        with session_scope(self.engine) as session:
            run = get_run(session=session, run_id=job.run_id)
            data = load_recsys_data(session=session, name=run.config["dataset"])
            set_run_status(session=session, run_id=job.run_id, status=JobStatus.RUNNING)
        for part in ("users", "items", "interactions"):
            getattr(data, part).to_parquet(folder / f"{part}.parquet")
        recommender = {
            "run_id": job.run_id,
            "config": run.config["model"],
            "recipe": data.recipe,
            "run_dir": str(run_directory(self.home, job.run_id)),
        }
        (folder / "job.json").write_text(json.dumps({"recommender": recommender}, default=str))

    def _ingest(self) -> None:
        for job_id, process in list(self.processes.items()):
            events = self._new_events(job_id)
            with session_scope(self.engine) as session:
                job = get_job(session=session, job_id=job_id)
                run_id = job.run_id
            final = None
            for event in events:
                if event["type"] == "epoch":
                    with session_scope(self.engine) as session:
                        append_metrics(
                            session=session, run_id=run_id, rows=epoch_rows(event["record"])
                        )
                elif event["type"] == "progress":
                    with session_scope(self.engine) as session:
                        update_job(session=session, job_id=job_id, progress=event, heartbeat=True)
                elif event["type"] in ("finished", "failed"):
                    final = event
            if final is not None:
                process.wait()
                self._finish(job_id, run_id, final)
            elif process.poll() is not None:
                self._died(job_id, run_id, process.returncode)
            elif job_id in self.cancelled_at and (
                time.monotonic() - self.cancelled_at[job_id] > KILL_AFTER_S
            ):
                process.kill()

    def _new_events(self, job_id: int) -> list[dict[str, Any]]:
        path = self.job_dir(job_id) / EVENTS
        if not path.exists():
            return []
        with path.open("rb") as handle:
            handle.seek(self.offsets[job_id])
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]  # a half-written last line waits
        self.offsets[job_id] += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def _finish(self, job_id: int, run_id: int, event: dict[str, Any]) -> None:
        if event["type"] == "failed":
            self._end(job_id, run_id, JobStatus.FAILED, event["error"])
            return
        summary = event["summary"]
        spec = json.loads((self.job_dir(job_id) / "job.json").read_text())
        if "recommender" in spec:
            from storage.recsys import finish_recsys_run

            folder = Path(spec["recommender"]["run_dir"])
            finish_recsys_run(engine=self.engine, run_id=run_id, folder=folder, summary=summary)
        else:
            finish_run(engine=self.engine, inputs=RunInputs(**spec["inputs"]), summary=summary)
        cancelled = summary.get("stopped_because") == "cancelled"
        with session_scope(self.engine) as session:
            update_job(
                session=session,
                job_id=job_id,
                status=JobStatus.CANCELLED if cancelled else JobStatus.SUCCEEDED,
            )
        self._forget(job_id)

    def _died(self, job_id: int, run_id: int, code: int) -> None:
        if job_id in self.cancelled_at:
            self._end(job_id, run_id, JobStatus.CANCELLED, "Cancelled; the worker was stopped.")
            return
        reason = f"signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"code {code}"
        tail = (self.job_dir(job_id) / "stderr.log").read_bytes()[-STDERR_TAIL:]
        message = f"The worker exited with {reason} before finishing."
        if tail.strip():
            message += "\n" + tail.decode("utf-8", "replace")
        self._end(job_id, run_id, JobStatus.FAILED, message)

    def _end(self, job_id: int, run_id: int, status: JobStatus, error: str) -> None:
        fail_run(engine=self.engine, run_id=run_id, error=error, status=status)
        with session_scope(self.engine) as session:
            update_job(session=session, job_id=job_id, status=status, error=error)
        self._forget(job_id)

    def _forget(self, job_id: int) -> None:
        self.processes.pop(job_id, None)
        self.offsets.pop(job_id, None)
        self.cancelled_at.pop(job_id, None)


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
