"""The real server process (`trendlab serve`): what it does at start-up, before any page runs."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import pytest

from core.market.config import DataConfig
from core.market.models import model_spec
from core.market.sources import synthetic_data
from services.datasets import save_market_dataset
from services.jobs.manager import JobManager
from services.jobs.worker import is_worker
from storage import DataHome, open_engine
from storage.repository import get_job, list_metrics, session_scope
from tests.conftest import running_server, server_process


def _queue(manager: JobManager, epochs: int) -> int:
    spec = model_spec("compact_dual_tower")
    training = spec.training_config_class.from_dict(
        {"epochs": epochs, "batch_size": 32, "early_stopping_patience": 0}, partial=True
    )
    return manager.submit_training(
        model_name=spec.name,
        dataset_name="small",
        training=training,
        model_config=spec.config_class(),
        baselines=["majority"],
    )


def _epochs_written(home: DataHome, job_id: int) -> list[int]:
    path = home.jobs / f"job_{job_id}" / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [int(e["record"]["epoch"]) for e in map(json.loads, lines) if e["type"] == "epoch"]


def _finished(home: DataHome, job_id: int) -> bool:
    path = home.jobs / f"job_{job_id}" / "events.jsonl"
    return path.exists() and '"type": "finished"' in path.read_text()


def _run_statuses(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/api/runs", timeout=10) as response:
        return {run["status"] for run in json.loads(response.read())}


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_server_killed_mid_job_loses_no_epoch_and_restarts_its_queue(data_home) -> None:
    """Issue 13, item 2: SIGKILL the server while a job trains; the worker goes on alone.
    The restarted server, with no page opened, must ingest every epoch the worker wrote,
    follow it to the end, and start the job that was still queued."""
    engine = open_engine(data_home.database_url)
    data = synthetic_data(
        ["AAA", "BBB", "CCC"], "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    save_market_dataset(engine=engine, name="small", data=data, config=DataConfig(), description="")
    manager = JobManager(engine=engine, home=data_home)
    first, second = _queue(manager, epochs=25), _queue(manager, epochs=2)
    engine.dispose()  # the server owns the file from here

    environment = {"TRENDLAB_JOB_RUNNER": "1", "TRENDLAB_MAX_JOBS": "1"}
    with server_process(data_home.root, **environment) as (_, server):
        _wait(lambda: len(_epochs_written(data_home, first)) >= 2, 120, "two epochs")
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    written_while_down = _epochs_written(data_home, first)
    with running_server(data_home.root, **environment) as url:
        _wait(lambda: _finished(data_home, second), 180, "the queued job to finish")
        # The server records the end on a later tick; ask it (it holds the file) until it has.
        _wait(lambda: _run_statuses(url) == {"succeeded"}, 60, "the server to record the ends")
    engine = open_engine(data_home.database_url)
    with session_scope(engine) as session:
        jobs = {job_id: get_job(session=session, job_id=job_id) for job_id in (first, second)}
        epochs = {
            job_id: sorted({m.epoch for m in list_metrics(session=session, run_id=job.run_id)})
            for job_id, job in jobs.items()
        }
        statuses = {job_id: job.status for job_id, job in jobs.items()}
    engine.dispose()
    assert statuses == {first: "succeeded", second: "succeeded"}, statuses
    assert epochs[first] == list(range(1, 26)), "every epoch, those trained unobserved too"
    assert epochs[second] == [1, 2]
    assert len(written_while_down) >= 2
    assert not is_worker(jobs[first].pid, data_home.jobs / f"job_{first}"), "no orphan left"


def test_start_up_takes_what_it_loaded_out_of_the_collectors_view(data_home: DataHome) -> None:
    """Issue 23's load test: a full garbage collection walked the 400,000 objects start-up
    loads (torch, pandas, Streamlit), holding the GIL for about 250 ms that every request in
    flight waited out. After start-up they are frozen (gc.freeze), so collections skip them."""
    import gc

    from starlette.testclient import TestClient

    from api.server import app

    gc.unfreeze()
    try:
        with TestClient(app) as client:
            assert client.get("/api/health").status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
