"""services/datasets.py: market datasets built from raw records and stored."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.sources import MarketData
from services import datasets
from storage.repository import count_rows, session_scope


def test_a_build_that_fails_stores_nothing(engine: Engine, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(datasets, "build_market_dataset", broken)
    data = MarketData(prices=pd.DataFrame(), recipe={"source": "synthetic", "seed": 1})
    with pytest.raises(RuntimeError):
        datasets.save_market_dataset(
            engine=engine, name="x", data=data, config=DataConfig(), description="test"
        )
    with session_scope(engine) as session:
        assert count_rows(session=session)["datasets"] == 0
