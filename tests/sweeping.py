"""A small sweep run to its end with real workers, shared by the sweep and page tests."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.models import model_spec
from core.market.sources import synthetic_data
from services.datasets import save_market_dataset
from services.jobs.manager import JobManager
from services.sweeps.study import start_sweep, sweep_info
from storage import DataHome
from storage.repository import get_job, get_run, session_scope

MODEL = "compact_dual_tower"
TRAINING = {
    "epochs": 6,
    "batch_size": 64,
    "early_stopping_patience": 0,
    "scheduler": {"warmup_epochs": 0},
    "seed": 11,
}
SPACE = {
    # A decade each side of the default and beyond: the low end learns too slowly to keep up.
    "training.optimizer.base_learning_rate": {"low": 1e-5, "high": 3e-2, "log": True},
    "model.dropout": {"low": 0.0, "high": 0.5},
    "training.batch_size": {"choices": [32, 64, 128]},
}


def store_demo(engine: Engine, name: str = "demo") -> None:
    """Synthetic demo data (the planted context signal), small: 3 tickers, 5 years."""
    data = synthetic_data(
        ["AAA", "BBB", "CCC"], "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    save_market_dataset(engine=engine, name=name, data=data, config=DataConfig(), description="")


def tick_until(manager: JobManager, done, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        manager.tick()
        time.sleep(0.1)


@dataclass
class SweepResult:
    sweep_id: int
    default_loss: float


def run_default_and_sweep(
    engine: Engine, home: DataHome, *, trials: int = 8, parallel: int = 2, default: bool = True
) -> SweepResult:
    """The base config trained once as an ordinary job (unless not ``default``), then a sweep
    around it."""
    spec = model_spec(MODEL)
    training = spec.training_config_class.from_dict(TRAINING, partial=True)
    manager = JobManager(engine=engine, home=home, max_running=parallel)
    default_loss = train_default(manager, training) if default else float("nan")
    sweep_id = start_sweep(
        manager,
        model_name=MODEL,
        dataset_name="demo",
        space=SPACE,
        trials=trials,
        parallel=parallel,
        training=training,
    )
    tick_until(
        manager,
        lambda: (
            sweep_info(engine=engine, home=home, sweep_id=sweep_id).status
            in ("succeeded", "failed", "cancelled")
        ),
    )
    return SweepResult(sweep_id, default_loss)


def train_default(manager: JobManager, training) -> float:
    """Train the base config as an ordinary job; its best validation loss."""
    engine, spec = manager.engine, model_spec(MODEL)
    job_id = manager.submit_training(
        model_name=MODEL,
        dataset_name="demo",
        training=training,
        model_config=spec.config_class(),
        baselines=["majority"],
    )

    def job_status() -> str:
        with session_scope(engine) as session:
            return get_job(session=session, job_id=job_id).status

    tick_until(manager, lambda: job_status() in ("succeeded", "failed"))
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=get_job(session=session, job_id=job_id).run_id)
        return run.summary_metrics["best_val_loss"]
