"""The demo datasets `trendlab serve` stores on a first start (and the benchmarks use)."""

from __future__ import annotations

from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.sources import DEMO_SEED, demo_data
from core.recsys.synthetic import generate_recsys
from storage.feature_store import save_market_dataset
from storage.recsys import save_recsys_dataset
from storage.repository import list_datasets, session_scope


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
