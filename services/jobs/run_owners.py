"""Which process trains a run outside the job manager (a CLI command), and runs whose
process is gone: a command killed with SIGKILL, or a machine that lost power, leaves its
run 'running' with nothing left to finish it; so does a server stopped while its job's worker
was killed. Light on imports: every command calls ``recover_stale_runs`` and
``stopped_server_jobs`` when it opens the database."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from services.access import read_only
from storage.data_home import DataHome
from storage.models import JobStatus
from storage.repository import list_jobs, list_runs, session_scope, set_run_status

HOST = socket.gethostname()


def mark_running(*, session: Session, run_id: int) -> None:
    """The run is training in this process: its status, and the process that owns it (so a
    run whose process died can be told from one still training: ``recover_stale_runs``)."""
    owner = {"pid": os.getpid(), "host": HOST}
    set_run_status(session=session, run_id=run_id, status=JobStatus.RUNNING, summary_metrics=owner)


STOPS: list[int] = []
"""Stop signals this process received (the CLI records them as they land): an interrupt
that lands inside a database call can come back as another error (an aborted
transaction), and the run it stopped is still cancelled, not failed."""


def stop_received() -> bool:
    return bool(STOPS)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while the block records a run's outcome, then stop the command:
    a stop that lands while the final status is written would roll that write back and
    leave the run 'running'. Only the main thread can hold signals; elsewhere (a worker's
    thread) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    # a stop this process ignores (SIGINT under nohup) stays ignored
    held = [n for n in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(n) != signal.SIG_IGN]
    before = {
        number: signal.signal(number, lambda number, _: caught.append(number)) for number in held
    }
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
    if caught:
        signal.raise_signal(caught[0])


def alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (someone else's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def is_worker(pid: int, folder: Path) -> bool:
    """True when ``pid`` is alive and is the worker of ``folder`` (its command line names the
    job folder). A PID alone is not enough: after a reboot it may belong to anything."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:  # gone, or no /proc (then nothing is ever signalled)
        return False
    return str(folder).encode() in command


def owner_gone(owner: str | None, *, elsewhere_gone: bool = False) -> bool:
    """Whether the manager named ``owner`` (host:pid:tag) no longer runs: none recorded (an
    older server), one on this host whose process is gone, or this very process (a manager
    started again in it, as after a restart of the job runner). An owner on another host
    cannot be checked from here: ``elsewhere_gone`` decides."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":")[0]
    pid = int(pid_text) if pid_text.isdigit() else 0
    if host != HOST:
        return elsewhere_gone
    return pid == os.getpid() or not alive(pid)


def recover_stale_runs(*, engine: Engine) -> list[int]:
    """Mark interrupted every run left 'running' by a process of this machine that is gone
    (a CLI run killed with SIGKILL, or a machine that lost power); runs of the job manager
    are its own to recover (``services.jobs.manager.JobManager.recover``). Returns those marked.
    Skipped in a read-only deployment, which writes nothing."""
    if read_only():
        return []
    marked = []
    with session_scope(engine) as session:
        owned_by_jobs = {job.run_id for job in list_jobs(session=session)}
        for run in list_runs(session=session):
            owner = run.summary_metrics or {}
            if (
                run.status != JobStatus.RUNNING
                or run.id in owned_by_jobs
                or owner.get("host") != HOST
                or not isinstance(owner.get("pid"), int)
                or alive(owner["pid"])
            ):
                continue
            set_run_status(
                session=session,
                run_id=run.id,
                status=JobStatus.INTERRUPTED,
                summary_metrics={
                    "error": f"the process that trained it (pid {owner['pid']}) is gone"
                },
            )
            marked.append(run.id)
    return marked


def stopped_server_jobs(*, engine: Engine, home: DataHome) -> list[int]:
    """The jobs a server of this machine left 'running' when it stopped and whose worker is
    gone too: for ``JobManager.recover`` to ingest what the worker wrote and mark them
    interrupted, as the next server would. A job whose worker still runs is left for the
    next server to follow. None when read-only."""
    if read_only():
        return []
    with session_scope(engine) as session:
        return [
            job.id
            for job in list_jobs(session=session, statuses=[JobStatus.RUNNING])
            if owner_gone(job.owner) and not is_worker(job.pid or 0, home.jobs / f"job_{job.id}")
        ]
