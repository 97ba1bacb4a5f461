"""Storing the datasets users build or import: the write actions of the Data page, the CLI's
`data` and `recsys` commands, refused in a read-only deployment. (The demo data that
`trendlab serve` stores on a first start goes through ``services.demo``.)"""

from __future__ import annotations

from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.sources import MarketData
from core.recsys.synthetic import RecsysData
from services.access import ensure_writable
from services.catalog import DatasetInfo
from storage.feature_store import save_market_dataset
from storage.recsys import save_recsys_dataset


def store_market_dataset(
    *, engine: Engine, name: str, data: MarketData, config: DataConfig, description: str
) -> tuple[DatasetInfo, bool]:
    """Build features and labels and store them as ``name``; returns the dataset and whether
    an identical stored build was reused instead."""
    ensure_writable("building or importing datasets")
    dataset, reused = save_market_dataset(
        engine=engine, name=name, data=data, config=config, description=description
    )
    return DatasetInfo.of(dataset), reused


def store_recsys_dataset(
    *, engine: Engine, name: str, data: RecsysData, description: str
) -> tuple[DatasetInfo, bool]:
    """Store users, items and interactions as ``name`` (an identical recipe is reused)."""
    ensure_writable("building or importing datasets")
    dataset, reused = save_recsys_dataset(
        engine=engine, name=name, data=data, description=description
    )
    return DatasetInfo.of(dataset), reused
