"""Jobs on a local Ray cluster (2 CPUs): two at once, cancel within 5 s, recorded like local
jobs, a killed Ray worker fails its job; and without TRENDLAB_RAY_ADDRESS, no Ray at all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from services.jobs.manager import JobManager
from storage.models import JobStatus
from storage.repository import count_metrics, get_job, get_run, session_scope
from tests.conftest import ROOT
from tests.services.test_jobs import epochs_seen, job, submit, until
from tests.sweeping import store_demo


@pytest.fixture
def backend() -> str:
    return "duckdb"  # the runner is the subject here, not the database


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


@pytest.fixture
def manager(ray_cluster, engine, data_home, monkeypatch) -> JobManager:
    monkeypatch.setenv("TRENDLAB_RAY_ADDRESS", "local")
    store_demo(engine, "small")
    jobs = JobManager(engine=engine, home=data_home, max_running=2)
    assert jobs.ray is not None
    yield jobs
    for worker in jobs.workers.values():
        worker.kill()


def _recorded_like_a_local_job(manager: JobManager, job_id: int) -> None:
    events = (manager.job_dir(job_id) / "events.jsonl").read_text().splitlines()
    records = [json.loads(e)["record"] for e in events if '"type": "epoch"' in e]
    with session_scope(manager.engine) as session:
        row = get_job(session=session, job_id=job_id)
        stored = count_metrics(session=session, run_id=row.run_id)
        run = get_run(session=session, run_id=row.run_id)
        assert run.status == row.status and run.finished_at is not None
    assert records and stored == sum(len(r) - 1 for r in records), "every value of every epoch"


@pytest.mark.slow
def test_two_jobs_run_at_once_on_ray_and_one_is_cancelled_within_5_s(manager) -> None:
    # the first job long enough to still run when a loaded machine's Ray starts the second
    first, second = submit(manager, epochs=20), submit(manager, epochs=500)
    until(manager, lambda: epochs_seen(manager, first) >= 1 and epochs_seen(manager, second) >= 1)
    assert job(manager, first).status == job(manager, second).status == "running", "at once"
    started = time.monotonic()
    manager.cancel(second)
    until(manager, lambda: JobStatus(job(manager, second).status).finished, timeout=10)
    assert time.monotonic() - started < 5.0
    assert job(manager, second).status == "cancelled"
    until(manager, lambda: job(manager, first).status == "succeeded", timeout=300)
    for job_id in (first, second):
        _recorded_like_a_local_job(manager, job_id)
    run_dir = manager.home.checkpoints / f"run_{job(manager, second).run_id}"
    assert (run_dir / "last.pt").exists(), "the cancelled job can resume from last.pt"


@pytest.mark.slow
def test_a_killed_ray_worker_fails_its_job(manager) -> None:
    job_id = submit(manager, epochs=500)
    until(manager, lambda: epochs_seen(manager, job_id) >= 1)
    pid = job(manager, job_id).pid
    assert pid and pid != os.getpid(), "the Ray worker's own process"
    os.kill(pid, signal.SIGKILL)
    until(manager, lambda: job(manager, job_id).status == "failed", timeout=60)
    assert "Ray" in job(manager, job_id).error


def test_without_the_address_nothing_of_ray_is_imported(data_home) -> None:
    code = (
        "import sys\n"
        "from storage import DataHome, open_engine\n"
        "from services.jobs.manager import JobManager\n"
        "home = DataHome.from_env().ensure()\n"
        "manager = JobManager(engine=open_engine(home.database_url), home=home)\n"
        "manager.tick()\n"
        "assert manager.ray is None\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
