"""Handlers take their data home and database through FastAPI's ``Depends`` (issue 40), so a
test can hand them another one without touching the environment."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_api
from api.shared import RequestContext, request_context
from core.market.config import DataConfig
from core.market.sources import synthetic_data
from services.datasets import save_market_dataset
from storage import DataHome, open_engine


def test_an_overridden_context_is_what_every_handler_reads(
    data_home: DataHome, tmp_path: Path
) -> None:
    other = DataHome(tmp_path / "other").ensure()
    engine = open_engine(other.database_url)
    data = synthetic_data(
        ["AAA", "BBB"], "2018-01-01", "2019-12-31", seed=1, signal=True, horizons=[7]
    )
    save_market_dataset(
        engine=engine, name="elsewhere", data=data, config=DataConfig(horizons=[7]), description=""
    )
    app = create_api()
    client = TestClient(app)
    assert client.get("/datasets").json() == [], "the environment's home holds nothing"
    app.dependency_overrides[request_context] = lambda: RequestContext(other, engine)
    listed = client.get("/datasets").json()
    assert [d["name"] for d in listed] == ["elsewhere"]
    assert client.get("/datasets/elsewhere").status_code == 200
    engine.dispose()
