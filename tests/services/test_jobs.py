"""Background jobs with real worker processes: success, cancel, SIGKILL, interrupted + resume,
and two jobs beside continuous reads."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from core.market.config import DataConfig, TrainingConfig
from core.market.models import model_spec
from core.market.sources import synthetic_data
from services.datasets import save_market_dataset
from services.jobs.manager import JobManager
from storage.db import StorageError
from storage.models import JobStatus
from storage.repository import (
    count_metrics,
    get_job,
    get_run,
    list_jobs,
    list_metrics,
    session_scope,
)


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
    for worker in jobs.workers.values():
        worker.kill()


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


def test_a_worker_that_finishes_while_its_events_are_read_succeeds(
    manager: JobManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the manager's ingestion is slow: the worker can write its last events and
    exit between the manager's read and its look at the exit code. Asked after the read,
    that clean exit looked like a death before the finish ("exited with code 0")."""
    job_id = submit(manager, epochs=3)
    read = manager._new_events

    def slow_read(running: int) -> list:
        events = read(running)
        manager.workers[running].process.wait(timeout=120)  # it finishes meanwhile
        return events

    monkeypatch.setattr(manager, "_new_events", slow_read)
    until(manager, lambda: job(manager, job_id).status in ("succeeded", "failed"), 180)
    assert job(manager, job_id).status == "succeeded", job(manager, job_id).error
    assert epochs_seen(manager, job_id) == 3


def test_cancel_stops_a_running_job_at_its_next_step_and_keeps_the_best_checkpoint(
    manager: JobManager, monkeypatch
) -> None:
    # The kill fallback is pushed out of reach: the worker must stop by itself, however
    # loaded the machine is (no wall-clock bound is asserted; that belongs in bench/).
    monkeypatch.setattr("services.jobs.manager.KILL_AFTER_S", 600.0)
    job_id = submit(manager, epochs=500)
    until(manager, lambda: epochs_seen(manager, job_id) >= 1)
    manager.cancel(job_id)
    until(manager, lambda: JobStatus(job(manager, job_id).status).finished)
    ended = job(manager, job_id)
    assert ended.status == "cancelled"
    assert "worker was stopped" not in (ended.error or ""), "the trainer stopped, not a kill"
    assert epochs_seen(manager, job_id) < 500, "training ended before its last epoch"
    run_dir = manager.home.checkpoints / f"run_{ended.run_id}"
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
    # The machine goes down: server and worker die. A new server starts and recovers.
    worker = manager.workers.pop(job_id)
    worker.kill()
    worker.process.wait()
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
    from core.recsys.config import recsys_configs
    from core.recsys.synthetic import RecsysSpec, generate_recsys
    from services.recsys.serving import active_run, recommender_runs
    from storage.recsys import save_recsys_dataset

    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=500, seed=5))
    save_recsys_dataset(engine=manager.engine, name="rs", data=data, description="test")
    config, training = recsys_configs({"hidden_dims": [16], "embedding_dim": 8, "epochs": 3})
    job_id = manager.submit_training(
        model_name="two_tower", dataset_name="rs", training=training, model_config=config
    )
    until(manager, lambda: job(manager, job_id).status in ("succeeded", "failed"))
    finished = job(manager, job_id)
    assert finished.status == "succeeded", finished.error
    assert epochs_seen(manager, job_id) == 3, "every epoch's metrics were ingested"
    assert active_run(engine=manager.engine) == finished.run_id
    registry = recommender_runs(engine=manager.engine)
    assert registry[0]["run"] == finished.run_id and "ndcg@10" in registry[0]


# Regressions from the hardening probe (issue 13).


def test_recovery_ingests_what_a_dead_servers_worker_wrote_and_never_loses_an_epoch(
    manager, engine, data_home
) -> None:
    """Item 2: the worker went on writing epochs while no server ingested them; the next
    server's recovery reads them all before it marks the job interrupted."""
    job_id = submit(manager, epochs=6)
    until(manager, lambda: epochs_seen(manager, job_id) >= 1)
    manager.workers.clear()  # the server dies; its worker trains on, unobserved
    events = manager.job_dir(job_id) / "events.jsonl"
    deadline = time.monotonic() + 60
    while '"finished"' not in events.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    restarted = JobManager(engine=engine, home=data_home)
    restarted.recover()
    assert epochs_seen(restarted, job_id) == 6, "epochs written while no server ran"
    assert job(restarted, job_id).status == "succeeded", "its final event was taken too"


def test_recovery_adopts_a_live_orphan_worker_and_follows_it_to_the_end(
    manager, engine, data_home
) -> None:
    """Item 2: a worker still training when the new server starts is followed, not lost."""
    job_id = submit(manager, epochs=8)
    until(manager, lambda: epochs_seen(manager, job_id) >= 1)
    orphan = manager.workers.pop(job_id).process  # still running, no longer anybody's child
    restarted = JobManager(engine=engine, home=data_home)
    assert restarted.recover() == [], "a live worker is not interrupted"
    assert job(restarted, job_id).status == "running"
    until(restarted, lambda: job(restarted, job_id).status == "succeeded", timeout=120)
    orphan.wait(timeout=10)
    assert epochs_seen(restarted, job_id) == 8


def test_recovery_never_signals_a_process_that_is_not_the_worker(manager, engine) -> None:
    """Item 3: after a reboot the stored PID may belong to an unrelated process."""
    import subprocess

    stranger = subprocess.Popen(["sleep", "30"])
    try:
        job_id = submit(manager, epochs=3)
        with session_scope(engine) as session:
            from storage.repository import update_job

            update_job(session=session, job_id=job_id, status=JobStatus.RUNNING, pid=stranger.pid)
        assert manager.recover() == [job_id]
        assert stranger.poll() is None, "the unrelated process is still alive"
        assert job(manager, job_id).status == "interrupted"
    finally:
        stranger.kill()


def test_cancelling_before_the_first_epoch_ends_cancelled_not_failed(engine, data_home) -> None:
    """Item 5: the run folder did not exist yet, and writing the summary failed."""
    from services.market.runs import run_inputs, start_run, train_run

    data = synthetic_data(
        ["AAA", "BBB"], "2016-01-01", "2019-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    save_market_dataset(engine=engine, name="tiny", data=data, config=DataConfig(), description="")
    spec = model_spec("compact_dual_tower")
    run_id = start_run(
        engine=engine,
        model_name=spec.name,
        dataset_name="tiny",
        training=spec.training_config_class(),
        model_config=spec.config_class(),
    )
    inputs, frame = run_inputs(engine=engine, home=data_home, run_id=run_id)
    summary = train_run(inputs, frame, should_stop=lambda: True, device="cpu")
    assert summary["stopped_because"] == "cancelled" and summary["epochs"] == 0


def test_the_eta_of_a_resumed_job_counts_only_the_epochs_left() -> None:
    """Item 14: a job resumed at epoch 10 of 12 has two epochs left, not twelve."""
    from types import SimpleNamespace

    from services.jobs.worker import ProgressEvents

    written: list[dict] = []
    log = SimpleNamespace(write=lambda kind, **fields: written.append(fields))
    progress = ProgressEvents(log)
    trainer = SimpleNamespace(epoch=10, epochs=12, batches_per_epoch=10)
    progress.started -= 1.0  # one second per batch
    progress.on_batch_end(trainer, 0, {"total": 1.0})
    assert written[-1]["eta_s"] == pytest.approx(19.0, rel=0.05), "19 batches left at 1 s each"


def test_an_evaluation_error_keeps_the_trained_run(engine, data_home, monkeypatch) -> None:
    """Item 15: the model trained; a failure while scoring it must not discard it."""
    import services.market.runs as runs

    data = synthetic_data(
        ["AAA", "BBB"], "2016-01-01", "2019-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    save_market_dataset(engine=engine, name="tiny", data=data, config=DataConfig(), description="")

    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge in Linear Least Squares")

    monkeypatch.setattr(runs, "evaluate_model", broken)
    spec = model_spec("compact_dual_tower")
    training = spec.training_config_class.from_dict({"epochs": 1}, partial=True)
    run_id = runs.start_run(
        engine=engine,
        model_name=spec.name,
        dataset_name="tiny",
        training=training,
        model_config=spec.config_class(),
    )
    summary = runs.execute_run(engine=engine, home=data_home, run_id=run_id, device="cpu")
    assert "SVD did not converge" in summary["evaluation_error"]
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=run_id)
        assert run.status == "succeeded"
    assert (runs.run_directory(data_home, run_id) / "best.pt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["duckdb"])  # long; the lifecycle runs on both
def test_a_walk_forward_runs_as_a_job_and_leaves_its_run_as_it_was(manager, engine) -> None:
    """Issue 16: walk-forward evaluation, once CLI only, runs in the background fold by fold;
    the run keeps its status and its curves, and gains the folds' results."""
    from services.market.evaluation import load_walk_forward

    job_id = submit(manager, epochs=2)
    until(manager, lambda: job(manager, job_id).status == "succeeded", timeout=120)
    run_id = job(manager, job_id).run_id
    with session_scope(engine) as session:
        curves_before = count_metrics(session=session, run_id=run_id)
    walk = manager.submit_walk_forward(run_id=run_id, folds=2)
    until(manager, lambda: JobStatus(job(manager, walk).status).finished, timeout=300)
    assert job(manager, walk).status == "succeeded", job(manager, walk).error
    with session_scope(engine) as session:
        assert get_run(session=session, run_id=run_id).status == "succeeded"
        assert count_metrics(session=session, run_id=run_id) == curves_before
    result = load_walk_forward(engine=engine, run_id=run_id)
    assert len(result["folds"]) == 2 and {"model", "linear", "boosting"} <= set(
        result["folds"][0]["reports"]
    )
    assert result["folds"][0]["test_end"] < result["folds"][1]["test_start"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal needs a machine without CUDA")
def test_a_job_on_a_device_this_machine_lacks_is_refused_before_it_is_queued(
    manager: JobManager,
) -> None:
    with pytest.raises(StorageError, match="no CUDA GPU"):
        manager.submit_training(
            model_name="compact_dual_tower",
            dataset_name="small",
            training=TrainingConfig(),
            model_config=model_spec("compact_dual_tower").config_class(),
            device="cuda",
        )
    with session_scope(manager.engine) as session:
        assert list_jobs(session=session) == []


def test_the_worker_trains_on_the_device_its_job_names(manager: JobManager) -> None:
    job_id = manager.submit_training(
        model_name="compact_dual_tower",
        dataset_name="small",
        training=TrainingConfig.from_dict({"epochs": 1, "batch_size": 32}, partial=True),
        model_config=model_spec("compact_dual_tower").config_class(),
        baselines=["majority"],
        device="cpu",
    )
    until(manager, lambda: JobStatus(job(manager, job_id).status).finished, 180)
    assert json.loads((manager.job_dir(job_id) / "job.json").read_text())["device"] == "cpu"
    assert job(manager, job_id).status == "succeeded", job(manager, job_id).error


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["duckdb"])  # long; the lifecycle runs on both
def test_a_rolling_retrain_runs_as_a_job_and_records_its_decision(manager, engine) -> None:
    """Issue 25: the retrain job trains a new run on the latest years as any training job
    does; its finish judges it against the serving run and records the decision."""
    from services.market.rolling import serving, submit_retrain

    job_id = submit(manager, epochs=2)
    until(manager, lambda: job(manager, job_id).status == "succeeded", timeout=120)
    served = job(manager, job_id).run_id
    retrain = submit_retrain(engine=engine, serving_run_id=served, window_years=3)
    until(manager, lambda: JobStatus(job(manager, retrain).status).finished, timeout=300)
    assert job(manager, retrain).status == "succeeded", job(manager, retrain).error
    candidate = job(manager, retrain).run_id
    with session_scope(engine) as session:
        assert get_run(session=session, run_id=candidate).config["window"] == {
            "start_date": "2017-12-31"
        }
    decision = serving(engine=engine, dataset="small")["history"][-1]
    assert decision["candidate"] == candidate and decision["serving"] == served
    assert decision["reason"].startswith(("promoted: ", f"kept run {served}: "))


def test_a_walk_forward_s_progress_names_its_fold_and_counts_the_folds_done(tmp_path) -> None:
    """Issue 39: the progress line of a job of several trainings."""
    import json

    from services.jobs.progress import job_progress
    from services.jobs.worker import EventLog, ProgressEvents

    log = EventLog(tmp_path / "events.jsonl")
    progress = ProgressEvents(log)
    progress.on_stage("fold", 2, 3)
    said = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert said[-1]["type"] == "progress" and (said[-1]["fold"], said[-1]["folds"]) == (2, 3)
    assert job_progress({"fold": 2, "folds": 3}) == (1 / 3, "fold 2 of 3")
    share, line = job_progress(
        {"fold": 2, "folds": 3, "epoch": 3, "epochs": 4, "batch": 5, "batches": 10, "eta_s": 30}
    )
    assert share == pytest.approx((1 + 2.5 / 4) / 3)
    assert line == "fold 2 of 3 · epoch 3 of 4, about 30 s left in this training"
    assert job_progress({"epoch": 1, "epochs": 2, "batch": 0, "batches": 4}) == (
        0.0,
        "epoch 1 of 2",
    )
    assert job_progress({}) is None


def test_a_training_job_says_when_it_evaluates(manager: JobManager) -> None:
    """Issue 39: after its last epoch a job's progress says it is evaluating, so the jobs
    table does not show "epoch 2 of 2" through a long evaluation."""
    import json

    from services.jobs.progress import job_progress

    job_id = submit(manager, epochs=2)
    until(manager, lambda: job(manager, job_id).status == "succeeded", timeout=120)
    events = [
        json.loads(line)
        for line in (manager.job_dir(job_id) / "events.jsonl").read_text().splitlines()
    ]
    kinds = [(e["type"], e.get("phase")) for e in events]
    evaluating = kinds.index(
        ("progress", "evaluating the model and its baselines on the test rows")
    )
    last_epoch = max(i for i, (kind, _) in enumerate(kinds) if kind == "epoch")
    assert last_epoch < evaluating < kinds.index(("finished", None))
    assert job_progress(events[evaluating]) == (
        1.0,
        "evaluating the model and its baselines on the test rows",
    )


def test_a_job_interrupted_before_requests_were_kept_resumes_on_its_device(
    manager: JobManager, engine
) -> None:
    """A job queued by an earlier version named its device only in the job.json its worker
    read (schema 6 keeps it in the job's request): its resume still runs on that device."""
    from services.runs import run_directory
    from storage.repository import create_job, update_job

    job_id = submit(manager, epochs=1)
    with session_scope(engine) as session:
        run_id = get_job(session=session, job_id=job_id).run_id
        old = create_job(session=session, kind="train", run_id=run_id).id  # no request
        update_job(session=session, job_id=old, status=JobStatus.INTERRUPTED)
    folder = manager.job_dir(old)
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"kind": "train", "device": "cpu"}))
    last = run_directory(manager.home, run_id) / "last.pt"
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_bytes(b"a checkpoint")
    resumed = manager.resume(old)
    with session_scope(engine) as session:
        assert get_job(session=session, job_id=resumed).request == {
            "device": "cpu",
            "resume_from": str(last),
        }
