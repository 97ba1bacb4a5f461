"""Job throughput: the same short jobs with one and with two workers at a time."""

from __future__ import annotations

import time
from pathlib import Path

from bench.harness import Timed, case

JOBS = 8


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
    from core.market.config import DataConfig
    from core.market.models import model_spec
    from core.market.sources import synthetic_data
    from services.datasets import save_market_dataset
    from services.jobs import JobManager
    from storage import DataHome, open_engine
    from storage.models import JobStatus
    from storage.repository import get_job, session_scope

    home = DataHome.from_env().ensure()
    engine = open_engine(home.database_url)
    data = synthetic_data(
        ["AAA", "BBB", "CCC"], "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    save_market_dataset(engine=engine, name="small", data=data, config=DataConfig(), description="")
    spec = model_spec("compact_dual_tower")
    training = spec.training_config_class.from_dict(
        {"epochs": 2, "batch_size": 64, "early_stopping_patience": 0}, partial=True
    )

    def hours_for(workers: int) -> float:
        manager = JobManager(engine=engine, home=home, max_running=workers)
        ids = [
            manager.submit_training(
                model_name=spec.name,
                dataset_name="small",
                training=training,
                model_config=spec.config_class(),
                baselines=["majority"],
            )
            for _ in range(JOBS)
        ]
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
