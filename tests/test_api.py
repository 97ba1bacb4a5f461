"""The HTTP API through an HTTP client: the real handlers over a real data home, and the real
server answering pages and /api on one port."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import create_api
from core.recsys.synthetic import RecsysSpec, generate_recsys
from storage import DataHome, open_engine
from storage.recsys import save_recsys_dataset, train_recsys_run
from tests.conftest import running_server
from tests.pages.conftest import TINY as MARKET_TINY
from tests.pages.conftest import store_small_dataset, train_tiny

ROOT = Path(__file__).resolve().parents[1]
SEED_PATH = "/recommendations/startups/for-developer"


@pytest.fixture
def client(data_home: DataHome) -> TestClient:
    from core.config import TwoTowerConfig

    engine = open_engine(data_home.database_url)
    data = generate_recsys(RecsysSpec(users=60, items=50, interactions=900, seed=3))
    save_recsys_dataset(engine=engine, name="rs", data=data, description="test")
    tiny = TwoTowerConfig.from_dict(
        {"hidden_dims": [16], "embedding_dim": 8, "epochs": 2}, partial=True
    )
    train_recsys_run(engine=engine, home=data_home, dataset_name="rs", config=tiny)
    store_small_dataset(engine)
    assert MARKET_TINY and train_tiny(engine, data_home, "dual_tower") == 2
    engine.dispose()
    return TestClient(create_api())


def _resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _conforms(value: object, schema: dict, document: dict) -> None:
    """A small structural check: required keys present, declared types respected."""
    schema = _resolve(schema, document)
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                return _conforms(value, option, document)
            except AssertionError as error:
                errors.append(error)
        raise AssertionError(errors)
    kind = schema.get("type")
    python = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float)}
    if kind == "null":
        assert value is None
    elif kind in python:
        assert isinstance(value, python[kind]), (value, schema)
    if kind == "object":
        for key in schema.get("required", []):
            assert key in value, (key, value)
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _conforms(value[key], sub, document)
    if kind == "array":
        for element in value:
            _conforms(element, schema.get("items", {}), document)


def test_the_seed_endpoint_answers_with_the_documented_schema(client: TestClient) -> None:
    response = client.get(f"{SEED_PATH}/u0003", params={"limit": 5, "type": "collaboration"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engine"] in {"two_tower", "content"} and body["reason"] and body["run_id"] == 1
    assert 1 <= len(body["items"]) <= 5
    assert {item["details"]["type"] for item in body["items"]} == {"collaboration"}
    document = client.get("/openapi.json").json()
    operation = document["paths"][f"{SEED_PATH}/{{user_id}}"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    _conforms(body, schema, document)


def test_unknown_users_get_404_and_bad_parameters_422(client: TestClient) -> None:
    missing = client.get(f"{SEED_PATH}/nobody")
    assert missing.status_code == 404 and missing.json() == {"detail": "unknown user 'nobody'"}
    for params, name in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"engine": "x"}, "engine"),
    ):
        bad = client.get(f"{SEED_PATH}/u0003", params=params)
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"][0]["loc"] == ["query", name]
    unknown_filter = client.post(
        "/recommendations", json={"profile": {}, "filters": {"colour": "red"}}
    )
    assert unknown_filter.status_code == 422 and "colour" in unknown_filter.json()["detail"]


def test_a_new_profile_is_served_content_based(client: TestClient) -> None:
    profile = {"skills": "python;ml", "interests": "ai", "bio": "ml inference models"}
    response = client.post("/recommendations", json={"profile": profile, "limit": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engine"] == "content" and body["user_id"] is None and len(body["items"]) == 4


def test_predict_scores_rows_and_names_what_is_wrong(
    client: TestClient, data_home: DataHome
) -> None:
    from storage.runs import run_dataset

    engine = open_engine(data_home.database_url)
    rows = run_dataset(engine=engine, run_id=2).tail(3)
    engine.dispose()
    rows = rows.drop(columns=["date"])
    payload = rows.astype(object).where(rows.notna(), None).to_dict("records")  # NaN -> null
    response = client.post("/predict", json={"run_id": 2, "rows": payload})
    assert response.status_code == 200, response.text
    scores = [p["score_7d"] for p in response.json()["predictions"]]
    assert len(scores) == 3 and all(-1 <= s <= 1 for s in scores)
    for row in payload:
        del row["rsi_14"]
    broken = client.post("/predict", json={"run_id": 2, "rows": payload})
    assert broken.status_code == 422 and "rsi_14" in broken.json()["detail"]
    assert client.post("/predict", json={"run_id": 99, "rows": payload}).status_code == 404
    recommender = client.post("/predict", json={"run_id": 1, "rows": payload})
    assert recommender.status_code == 409 and "not a market model" in recommender.json()["detail"]
    assert client.post("/predict", json={"run_id": 2, "rows": []}).status_code == 422


def test_health_reports_the_schema_and_the_active_recommender(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body == {"status": "ok", "schema_version": 2, "active_recommender": 1}


def test_the_real_server_serves_pages_and_api_on_one_port(tmp_path: Path) -> None:
    with running_server(tmp_path / "home", TRENDLAB_JOB_RUNNER="0") as url:
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as response:
            assert b'"status":"ok"' in response.read()
        with urllib.request.urlopen(f"{url}/api/openapi.json", timeout=5) as response:
            assert SEED_PATH.encode() in response.read()
