"""One registry entry is all a new recommender engine needs to be judged and served (issue
40): a toy engine registered in the test is tuned and judged in the run's evaluation, offered
by the recommender, answered by the API and picked on the Recommend page, with no other file
touched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from streamlit.testing.v1 import AppTest

from api.app import create_api
from core.recsys.engines import ENGINES, MODEL, Engine
from core.recsys.tuning import Tuned, Tuning
from services.recsys.serving import serving
from storage import DataHome, open_engine
from tests.services.test_serving import trained_recommender

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TOY = "toy_newest"


def _newest(items: int, rows: np.ndarray) -> np.ndarray:
    return np.tile(np.arange(items, dtype=float), (len(rows), 1))  # (rows, items)


def _tune(tuning: Tuning) -> Tuned:
    items = len(tuning.catalogue.item_ids)
    return Tuned(lambda history: lambda rows: _newest(items, rows), {"items": float(items)})


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> str:
    """Ranks the catalogue by position, the last item first."""
    monkeypatch.setitem(
        ENGINES,
        TOY,
        Engine(
            TOY,
            "toy: the catalogue's last items first (registered by a test)",
            lambda recommender, rows: _newest(len(recommender.items), rows),
            tune=_tune,
            explain=lambda _r, i, _m: f"item {i} of the catalogue",
        ),
    )
    return TOY


def test_a_registered_toy_engine_is_judged_and_served_by_the_recommender_api_and_page(
    toy: str, data_home: DataHome
) -> None:
    engine = open_engine(data_home.database_url)
    data, _ = trained_recommender(engine, data_home, seed=5)
    recommender = serving(engine=engine, home=data_home).recommender
    report = recommender.report  # the run's evaluation, as stored
    assert report["settings"][toy] == {"items": 30.0}
    for segment in ("all_users", "cold_users"):
        assert "ndcg@10" in report[segment][toy]
    low, high = report["intervals"]["all_users"][toy]["ndcg@10"]
    assert low <= report["all_users"][toy]["ndcg@10"] <= high
    assert report["comparison"]["against"][toy]["verdict"] in ("beats", "worse", "no evidence")
    assert report["comparison"]["against"].keys() == set(report["all_users"]) - {MODEL}
    assert toy in recommender.engines()
    user = str(data.interactions["user_id"].iloc[0])
    answer = recommender.recommend(user, limit=3, engine=toy)
    seen = set(data.interactions.loc[data.interactions["user_id"] == user, "item_id"])
    expected = [i for i in reversed(recommender.items["item_id"].tolist()) if i not in seen][:3]
    assert answer.engine == toy and answer.items["item_id"].tolist() == expected
    client = TestClient(create_api())
    response = client.get(
        f"/recommendations/startups/for-developer/{user}", params={"engine": toy, "limit": 3}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engine"] == toy and [i["item_id"] for i in body["items"]] == expected
    listed = client.get("/recommendations/engines").json()["engines"][toy]  # the API's list
    assert listed["verdict"]["verdict"] == report["comparison"]["against"][toy]["verdict"]
    assert listed["intervals"]["ndcg@10"] == [low, high]
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/recommend.py").run()
    assert not at.exception, at.exception
    assert toy in next(s for s in at.selectbox if s.label == "Engine").options
    engine.dispose()
