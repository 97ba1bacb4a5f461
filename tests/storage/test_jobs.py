"""Background jobs with real worker processes: success, cancel, SIGKILL, interrupted + resume,
and two jobs beside continuous reads."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from core.config import DataConfig, TrainingConfig
from core.models import model_spec
from core.sources import synthetic_data
from storage.feature_store import save_market_dataset
from storage.jobs import JobManager
from storage.models import JobStatus
from storage.repository import count_metrics, get_job, get_run, list_metrics, session_scope


@pytest.fixture
def manager(engine, data_home) -> JobManager:
    data = synthetic_data(
        ["AAA", "BBB", "CCC"], "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    save_market_dataset(
        engine=engine, name="small", data=data, config=DataConfig(), description="test"
    )
    jobs = JobManager(engine=engine, home=data_home, max_running=1)
    yield jobs
    for process in jobs.processes.values():
        process.kill()


def submit(manager: JobManager, epochs: int) -> int:
    training = TrainingConfig.from_dict(
        {
            "epochs": epochs,
            "batch_size": 32,
            "early_stopping_patience": 0,
            "scheduler": {"warmup_epochs": 0},
        },
        partial=True,
    )
    return manager.submit_training(
        model_name="compact_dual_tower",
        dataset_name="small",
        training=training,
        model_config=model_spec("compact_dual_tower").config_class(),
        baselines=["majority"],
    )


def job(manager: JobManager, job_id: int):
    with session_scope(manager.engine) as session:
        return get_job(session=session, job_id=job_id)


def until(manager: JobManager, predicate, timeout: float = 60.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        manager.tick()
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError("timed out")


def epochs_seen(manager: JobManager, job_id: int) -> int:
    with session_scope(manager.engine) as session:
        rows = list_metrics(session=session, run_id=job(manager, job_id).run_id)
    return len({r.epoch for r in rows})


def test_a_short_job_succeeds_with_every_metric_stored(manager: JobManager) -> None:
    job_id = submit(manager, epochs=3)
    assert job(manager, job_id).status == "queued"
    until(manager, lambda: job(manager, job_id).status == "succeeded")
    events = [
        json.loads(line)
        for line in (manager.job_dir(job_id) / "events.jsonl").read_text().splitlines()
    ]
    records = [e["record"] for e in events if e["type"] == "epoch"]
    assert len(records) == 3
    with session_scope(manager.engine) as session:
        run = get_run(session=session, run_id=job(manager, job_id).run_id)
        stored = count_metrics(session=session, run_id=run.id)
        assert run.status == "succeeded" and run.summary_metrics["epochs"] == 3
    assert stored == sum(len(r) - 1 for r in records), "every value of every epoch"


def test_cancel_ends_a_running_job_within_two_seconds(manager: JobManager) -> None:
    job_id = submit(manager, epochs=500)
    until(manager, lambda: epochs_seen(manager, job_id) >= 1)
    started = time.monotonic()
    manager.cancel(job_id)
    until(manager, lambda: JobStatus(job(manager, job_id).status).finished, timeout=10)
    assert time.monotonic() - started < 2.0
    assert job(manager, job_id).status == "cancelled"
    run_dir = manager.home.checkpoints / f"run_{job(manager, job_id).run_id}"
    assert (run_dir / "best.pt").exists(), "the best checkpoint is kept"


def test_a_worker_killed_with_sigkill_is_marked_failed(manager: JobManager) -> None:
    job_id = submit(manager, epochs=500)
    until(manager, lambda: epochs_seen(manager, job_id) >= 1)
    os.kill(job(manager, job_id).pid, signal.SIGKILL)
    until(manager, lambda: job(manager, job_id).status == "failed", timeout=10)
    assert "SIGKILL" in job(manager, job_id).error


def test_a_job_left_by_a_dead_server_is_interrupted_then_resumes(manager, engine, data_home):
    job_id = submit(manager, epochs=6)
    until(manager, lambda: epochs_seen(manager, job_id) >= 2)
    # The server dies: nobody ingests any more. A new server starts and recovers.
    manager.processes.clear()
    restarted = JobManager(engine=engine, home=data_home)
    assert restarted.recover() == [job_id]
    assert job(restarted, job_id).status == "interrupted"
    resumed = restarted.resume(job_id)
    until(restarted, lambda: job(restarted, resumed).status == "succeeded")
    with session_scope(engine) as session:
        epochs = sorted(
            {r.epoch for r in list_metrics(session=session, run_id=job(restarted, resumed).run_id)}
        )
    assert epochs[-1] == 6, "training went on to the last epoch from the checkpoint"


def test_two_jobs_and_continuous_reads(manager: JobManager) -> None:
    manager.max_running = 2
    first, second = submit(manager, epochs=3), submit(manager, epochs=3)
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                with session_scope(manager.engine) as session:
                    count_metrics(session=session)
            except BaseException as error:
                errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        until(manager, lambda: all(job(manager, j).status == "succeeded" for j in (first, second)))
    finally:
        done.set()
        reader.join()
    assert errors == []
    for job_id in (first, second):
        events = (manager.job_dir(job_id) / "events.jsonl").read_text().splitlines()
        records = [json.loads(e)["record"] for e in events if '"epoch"' in e and '"record"' in e]
        with session_scope(manager.engine) as session:
            stored = count_metrics(session=session, run_id=job(manager, job_id).run_id)
        assert stored == sum(len(r) - 1 for r in records)


def test_a_recommender_job_trains_in_a_worker_and_becomes_active(manager: JobManager) -> None:
    from core.config import TwoTowerConfig
    from core.recsys.synthetic import RecsysSpec, generate_recsys
    from storage.recsys import active_run, recommender_runs, save_recsys_dataset

    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=500, seed=5))
    save_recsys_dataset(engine=manager.engine, name="rs", data=data, description="test")
    config = TwoTowerConfig.from_dict(
        {"hidden_dims": [16], "embedding_dim": 8, "epochs": 3}, partial=True
    )
    job_id = manager.submit_recommender_training(dataset_name="rs", config=config)
    until(manager, lambda: job(manager, job_id).status in ("succeeded", "failed"))
    finished = job(manager, job_id)
    assert finished.status == "succeeded", finished.error
    assert epochs_seen(manager, job_id) == 3, "every epoch's metrics were ingested"
    assert active_run(engine=manager.engine) == finished.run_id
    registry = recommender_runs(engine=manager.engine)
    assert registry[0]["run"] == finished.run_id and "ndcg@10" in registry[0]
