"""Jobs through the real job manager: throughput with one and two workers, and how soon a
cancelled job stops."""

from __future__ import annotations

import time
from pathlib import Path

from bench.harness import Timed, case

JOBS = 8


def _small_market_jobs(epochs: int):
    """A data home holding a 3-ticker synthetic dataset, and a function that submits one
    compact dual-tower job to a given manager."""
    from core.market.config import DataConfig
    from core.market.models import model_spec
    from core.market.sources import synthetic_data
    from services.datasets import save_market_dataset
    from storage import DataHome, open_engine

    home = DataHome.from_env().ensure()
    engine = open_engine(home.database_url)
    data = synthetic_data(
        ["AAA", "BBB", "CCC"], "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    save_market_dataset(engine=engine, name="small", data=data, config=DataConfig(), description="")
    spec = model_spec("compact_dual_tower")
    training = spec.training_config_class.from_dict(
        {"epochs": epochs, "batch_size": 64, "early_stopping_patience": 0}, partial=True
    )

    def submit(manager) -> int:
        return manager.submit_training(
            model_name=spec.name,
            dataset_name="small",
            training=training,
            model_config=spec.config_class(),
            baselines=["majority"],
        )

    return home, engine, submit


@case(
    "jobs.throughput",
    repeats=1,
    description=(
        f"{JOBS} short training jobs (compact dual tower, 2 epochs, 3 tickers x 5 years) "
        "through the job manager with local workers, 1 then 2 at a time, in the same run"
    ),
    target="2 workers finish more jobs per hour than 1 (ratio above 1)",
)
def jobs_throughput(scratch: Path) -> Timed:
    from services.jobs.manager import JobManager
    from storage.models import JobStatus
    from storage.repository import get_job, session_scope

    home, engine, submit = _small_market_jobs(epochs=2)

    def hours_for(workers: int) -> float:
        manager = JobManager(engine=engine, home=home, max_running=workers)
        ids = [submit(manager) for _ in range(JOBS)]
        start = time.perf_counter()
        while True:
            manager.tick()
            with session_scope(engine) as session:
                statuses = [JobStatus(get_job(session=session, job_id=i).status) for i in ids]
            if all(s.finished for s in statuses):
                break
            time.sleep(0.1)
        if any(s is not JobStatus.SUCCEEDED for s in statuses):
            raise RuntimeError(f"a benchmark job did not succeed: {statuses}")
        return (time.perf_counter() - start) / 3600

    def measure() -> dict[str, float]:
        one, two = JOBS / hours_for(1), JOBS / hours_for(2)
        return {"jobs_per_hour_1": one, "jobs_per_hour_2": two, "ratio": two / one}

    return measure


@case(
    "jobs.cancel_latency",
    repeats=3,
    description=(
        "a running 500-epoch compact dual-tower job is cancelled after its first epoch; the "
        "time from cancel() until the manager records it finished (the worker stops by "
        "itself at its next batch; the forced stop comes later)"
    ),
    target="under 2 s",
)
def jobs_cancel_latency(scratch: Path) -> Timed:
    from services.jobs.manager import JobManager
    from storage.models import JobStatus
    from storage.repository import get_job, list_metrics, session_scope

    home, engine, submit = _small_market_jobs(epochs=500)
    manager = JobManager(engine=engine, home=home)

    def status_and_epochs(job_id: int) -> tuple[JobStatus, int]:
        with session_scope(engine) as session:
            job = get_job(session=session, job_id=job_id)
            epochs = {r.epoch for r in list_metrics(session=session, run_id=job.run_id)}
            return JobStatus(job.status), len(epochs)

    def wait(job_id: int, done) -> None:
        deadline = time.monotonic() + 120
        while not done(*status_and_epochs(job_id)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} did not get there in 120 s")
            manager.tick()
            time.sleep(0.02)

    def measure() -> dict[str, float]:
        job_id = submit(manager)
        wait(job_id, lambda status, epochs: epochs >= 1)
        start = time.perf_counter()
        manager.cancel(job_id)
        wait(job_id, lambda status, epochs: status.finished)
        seconds = time.perf_counter() - start
        if status_and_epochs(job_id)[0] is not JobStatus.CANCELLED:
            raise RuntimeError("the cancelled benchmark job did not end cancelled")
        return {"cancel_to_finished_s": seconds}

    return measure
