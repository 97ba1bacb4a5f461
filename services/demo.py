"""The demo datasets `trendlab serve` stores on a first start (and the benchmarks use)."""

from __future__ import annotations

from sqlalchemy import Engine

from core.market.baselines import QUICK
from core.market.config import DataConfig
from core.market.sources import DEMO_SEED, demo_data
from core.recsys.synthetic import generate_recsys
from core.recsys.training import MODEL_NAME
from services.datasets import save_market_dataset
from services.jobs.kinds import job_kind_for
from services.registry import preset_configs
from storage.recsys import save_recsys_dataset
from storage.repository import create_job, list_datasets, session_scope


def store_demo_datasets(*, engine: Engine) -> list[str]:
    """'demo' (a synthetic market) when no market dataset exists, and 'startups' (the
    synthetic recommender data) when no recommender dataset exists; returns what it stored."""
    stored = []
    with session_scope(engine) as session:
        has_market = bool(list_datasets(session=session, recommender=False))
        has_recommender = bool(list_datasets(session=session, recommender=True))
    if not has_market:
        config = DataConfig()
        save_market_dataset(
            engine=engine,
            name="demo",
            data=demo_data(config.horizons),
            config=config,
            description=f"synthetic, seed {DEMO_SEED}, with context signal (demo)",
        )
        stored.append("demo")
    if not has_recommender:
        save_recsys_dataset(
            engine=engine, name="startups", data=generate_recsys(), description="synthetic (demo)"
        )
        stored.append("startups")
    return stored


DEMO_JOBS = ((MODEL_NAME, "startups"), ("dual_tower", "demo"))
"""What a first start trains, recommender first (the quicker): one model per kind."""
DEMO_BASELINES = QUICK
"""The demo's yardsticks: every kind of baseline but the slow ones (gradient boosting would
take longer to fit than the quick model takes to train)."""


def queue_demo_training(*, engine: Engine, datasets: list[str]) -> list[int]:
    """On a first start, queue one quick training job per kind on the demo datasets just
    stored (``datasets``), so Evaluate, Predict and Recommend show a real trained model
    within minutes; returns the job ids. The server's own action, like storing the demo
    data, so it happens in a read-only deployment too."""
    queued = []
    for model, dataset in DEMO_JOBS:
        if dataset not in datasets:
            continue
        config, training = preset_configs(model, "quick")
        kind = job_kind_for(model)
        (run_id,) = kind.start(
            engine=engine,
            model_name=model,
            dataset_name=dataset,
            model_config=config,
            trainings=[training],
            baselines=DEMO_BASELINES,
            experiment=None,
        )
        with session_scope(engine) as session:
            queued.append(
                create_job(
                    session=session, kind=kind.name, run_id=run_id, request={"device": "auto"}
                ).id
            )
    return queued
