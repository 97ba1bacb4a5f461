"""Sweeps with Optuna: trials as real worker jobs, median pruning through the trainer, the
study in the database's storage, the space checked field by field, read-only refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine

from services.jobs.manager import JobManager
from services.sweeps.driver import SweepDriver
from services.sweeps.space import SweepError, parse_space, suggested_space
from services.sweeps.study import start_sweep, sweep_info
from storage import DataHome
from storage.models import JobStatus
from storage.repository import get_run, list_jobs, session_scope
from storage.sweeps import get_sweep
from tests.sweeping import MODEL, SPACE, run_default_and_sweep, store_demo


@pytest.mark.slow
def test_a_sweep_of_8_trials_finishes_prunes_and_beats_the_default(swept) -> None:
    engine, home, result = swept
    info = sweep_info(engine=engine, home=home, sweep_id=result.sweep_id)
    states = [t.state for t in info.results]
    assert info.status == "succeeded" and len(states) == 8, states
    assert "pruned" in states, states
    assert info.best is not None and info.best.value <= result.default_loss * (1 + 1e-6)
    assert info.importance and set(info.importance) <= set(SPACE)
    with session_scope(engine) as session:
        trial_jobs = [j for j in list_jobs(session=session) if j.sweep_id == result.sweep_id]
        assert sorted(j.trial for j in trial_jobs) == list(range(8)), "every trial is a job"
        assert all(j.status == "succeeded" for j in trial_jobs)
        pruned = [t for t in info.results if t.state == "pruned"]
        stopped = {
            get_run(session=session, run_id=t.run_id).summary_metrics["stopped_because"]
            for t in pruned
        }
        assert stopped == {"pruned"}, "the trainer callback stopped them"
        assert all(t.epochs < 6 for t in pruned), "a pruned trial stopped before the end"


def test_the_space_is_checked_field_by_field(engine, data_home: DataHome) -> None:
    assert set(suggested_space(MODEL)) >= {"training.optimizer.base_learning_rate"}
    assert [d.path for d in parse_space(MODEL, SPACE)] == list(SPACE)
    wrong = {
        "training.seed": {"low": 1, "high": 9},
        "model.context_dim": {"low": 1, "high": 9},
        "model.nothing": {"low": 1, "high": 2},
        "model.dropout": {"low": 0.5, "high": 0.1},
        "training.optimizer.weight_decay": {"low": 0.0, "high": 0.1, "log": True},
        "training.optimizer.optimizer_type": {"choices": ["sgd"]},
        "training.batch_size": {"low": 1.5, "high": 9},
    }
    for path, bounds in wrong.items():
        with pytest.raises(SweepError, match=path.replace(".", r"\.")):
            parse_space(MODEL, {path: bounds})


def test_read_only_refuses_starting_a_sweep(engine, data_home, monkeypatch) -> None:
    from services.access import ReadOnlyError

    store_demo(engine)
    manager = JobManager(engine=engine, home=data_home)
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    with pytest.raises(ReadOnlyError, match="sweeps"):
        start_sweep(manager, model_name=MODEL, dataset_name="demo", space=SPACE, trials=2)


@pytest.mark.slow
def test_a_short_sweep_keeps_its_study_in_the_same_database(engine, data_home, backend) -> None:
    """On PostgreSQL the study's tables are in the metadata database (on DuckDB a SQLite file
    beside it: the 8-trial sweep above)."""
    if backend != "postgres":
        assert data_home.sweeps_url == f"sqlite:///{data_home.root}/sweeps.sqlite3"
        return
    from sqlalchemy import inspect

    store_demo(engine)
    result = run_default_and_sweep(engine, data_home, trials=2, parallel=2, default=False)
    info = sweep_info(engine=engine, home=data_home, sweep_id=result.sweep_id)
    assert info.status == "succeeded" and len(info.results) == 2
    assert all(t.run_id is not None and t.state == "complete" for t in info.results)
    assert data_home.sweeps_url == data_home.database_url
    assert {"studies", "trials", "jobs", "sweeps"} <= set(inspect(engine).get_table_names())


@dataclass
class RecordingQueue:
    """A job manager that only records the trial jobs a sweep submits."""

    engine: Engine
    home: DataHome
    owner: str = "test-host:1:queue"
    submitted: list[dict[str, Any]] = field(default_factory=list)

    def submit_training(self, **job: Any) -> int:
        self.submitted.append(job)
        return len(self.submitted)

    def cancel(self, job_id: int) -> None:
        pass

    def tick(self) -> None:
        pass


def test_a_sweep_of_one_trial_trains_the_base_config(engine, data_home: DataHome) -> None:
    """Issue 41, item 5: with ``trials=1`` the enqueued base trial (waiting) counted as asked,
    so the sweep failed at once with 'No trial completed.' and trial 0 stayed waiting."""
    store_demo(engine)
    queue = RecordingQueue(engine, data_home)
    sweep_id = start_sweep(queue, model_name=MODEL, dataset_name="demo", space=SPACE, trials=1)
    driver = SweepDriver(queue)
    driver.tick()
    assert [job["sweep"] for job in queue.submitted] == [(sweep_id, 0)]
    with session_scope(engine) as session:
        assert get_sweep(session=session, sweep_id=sweep_id).status == "running"
    driver.finished((sweep_id, 0), JobStatus.SUCCEEDED, {"best_val_loss": 0.5})
    driver.tick()
    with session_scope(engine) as session:
        assert get_sweep(session=session, sweep_id=sweep_id).status == "succeeded"
    assert len(queue.submitted) == 1, "one trial, no more"
