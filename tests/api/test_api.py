"""The HTTP API through an HTTP client: the real handlers over a real data home, and the real
server answering pages and /api on one port."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_api
from core.recsys.synthetic import RecsysSpec, generate_recsys
from services.market.evaluation import run_dataset
from services.recsys.runs import train_recsys_run
from storage import SCHEMA_VERSION, DataHome, open_engine
from storage.recsys import save_recsys_dataset
from tests.conftest import BACKENDS, running_server
from tests.pages.conftest import TINY as MARKET_TINY
from tests.pages.conftest import store_small_dataset, train_tiny

ROOT = Path(__file__).resolve().parents[2]
SEED_PATH = "/recommendations/startups/for-developer"
RECOMMENDER_RUN, TABULAR_RUN, SEQUENCE_RUN = 1, 2, 3


def build_api_home(root: Path) -> DataHome:
    """A data home with a tiny recommender (run 1), dual tower (run 2) and attention LSTM
    (run 3); the caller points TRENDLAB_HOME at ``root`` first."""
    from core.recsys.config import recsys_configs

    home = DataHome.from_env().ensure()
    assert home.root == root
    engine = open_engine(home.database_url)
    data = generate_recsys(RecsysSpec(users=60, items=50, interactions=900, seed=3))
    save_recsys_dataset(engine=engine, name="rs", data=data, description="test")
    tiny, tiny_training = recsys_configs({"hidden_dims": [16], "embedding_dim": 8, "epochs": 2})
    train_recsys_run(
        engine=engine, home=home, dataset_name="rs", config=tiny, training=tiny_training
    )
    store_small_dataset(engine)
    assert MARKET_TINY and train_tiny(engine, home, "dual_tower") == TABULAR_RUN
    assert train_tiny(engine, home, "lstm_attention") == SEQUENCE_RUN
    engine.dispose()
    return home


def use_home(monkeypatch: pytest.MonkeyPatch, root: Path, db_url: str | None = None) -> None:
    monkeypatch.setenv("TRENDLAB_HOME", str(root))
    if db_url:
        monkeypatch.setenv("TRENDLAB_DB_URL", db_url)
    else:
        monkeypatch.delenv("TRENDLAB_DB_URL", raising=False)
    monkeypatch.delenv("TRENDLAB_API_TOKEN", raising=False)
    monkeypatch.setenv("TRENDLAB_JOB_RUNNER", "0")


@pytest.fixture(scope="module", params=BACKENDS)
def api_db_url(request: pytest.FixtureRequest) -> str | None:
    """The API tests run on a DuckDB home and on one whose metadata is in PostgreSQL."""
    return (
        request.getfixturevalue("postgres").fresh_database()
        if request.param == "postgres"
        else None
    )


@pytest.fixture(scope="module")
def api_home(
    tmp_path_factory: pytest.TempPathFactory, api_db_url: str | None
) -> Iterator[DataHome]:
    """Built once per module and backend: the API only reads it."""
    root = tmp_path_factory.mktemp("api") / "home"
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, root, api_db_url)
        yield build_api_home(root)


@pytest.fixture
def client(
    api_home: DataHome, api_db_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    use_home(monkeypatch, api_home.root, api_db_url)
    return TestClient(create_api())


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the API takes them: NaN as null, dates as ISO text."""
    if "date" in frame:
        frame = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d"))
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def market_rows(home: DataHome, run_id: int) -> pd.DataFrame:
    engine = open_engine(home.database_url)
    try:
        return run_dataset(engine=engine, run_id=run_id)
    finally:
        engine.dispose()


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
    assert body["engine"] in {"two_tower", "ease", "item_knn", "popularity", "content"}
    assert body["reason"] and body["run_id"] == 1
    assert 1 <= len(body["items"]) <= 5
    assert {item["details"]["type"] for item in body["items"]} == {"collaboration"}
    document = client.get("/openapi.json").json()
    operation = document["paths"][f"{SEED_PATH}/{{user_id}}"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    _conforms(body, schema, document)


def test_the_engine_list_carries_intervals_verdicts_and_the_served_engine(
    client: TestClient,
) -> None:
    body = client.get("/recommendations/engines").json()
    assert body["run_id"] == 1 and body["primary_metric"] == "ndcg@10"
    engines = body["engines"]
    assert {"two_tower", "ease", "item_knn", "bpr", "popularity"} <= set(engines)
    assert engines["two_tower"]["served"] and not engines["bpr"]["served"], "BPR: judged only"
    for name, found in engines.items():
        low, high = found["intervals"]["ndcg@10"]
        assert low <= found["metrics"]["ndcg@10"] <= high
        if name != "two_tower":
            assert found["verdict"]["verdict"] in ("beats", "no evidence", "worse")
    assert body["serve"]["engine"] in engines and body["serve"]["reason"]
    assert body["comparison"]["best_baseline"] in engines


def test_unknown_users_get_404_and_bad_parameters_422(client: TestClient) -> None:
    missing = client.get(f"{SEED_PATH}/nobody")
    assert missing.status_code == 404 and missing.json() == {"detail": "unknown user 'nobody'"}
    for params, name in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"engine": "x"}, "engine"),
        ({"engine": "bpr"}, "engine"),  # judged in the evaluation, never served
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
    client: TestClient, api_home: DataHome
) -> None:
    payload = json_rows(market_rows(api_home, TABULAR_RUN).tail(3).drop(columns=["date"]))
    response = client.post("/predict", json={"run_id": TABULAR_RUN, "rows": payload})
    assert response.status_code == 200, response.text
    scores = [p["score_7d"] for p in response.json()["predictions"]]
    assert len(scores) == 3 and all(-1 <= s <= 1 for s in scores)
    for row in payload:
        del row["rsi_14"]
    broken = client.post("/predict", json={"run_id": TABULAR_RUN, "rows": payload})
    assert broken.status_code == 422 and "rsi_14" in broken.json()["detail"]
    assert client.post("/predict", json={"run_id": 99, "rows": payload}).status_code == 404
    recommender = client.post("/predict", json={"run_id": RECOMMENDER_RUN, "rows": payload})
    assert recommender.status_code == 409 and "not a market model" in recommender.json()["detail"]
    assert client.post("/predict", json={"run_id": TABULAR_RUN, "rows": []}).status_code == 422


def test_a_sequence_model_scores_each_tickers_last_window(
    client: TestClient, api_home: DataHome
) -> None:
    rows = market_rows(api_home, SEQUENCE_RUN).groupby("ticker").tail(100)
    response = client.post("/predict", json={"run_id": SEQUENCE_RUN, "rows": json_rows(rows)})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["ticker"] for p in predictions] == ["AAA", "BBB", "CCC"]
    assert all(p["date"].startswith("2020-12-") and "attention_0" in p for p in predictions)


def test_only_the_columns_a_model_reads_reach_the_frame(
    client: TestClient, api_home: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A made-up key per row would otherwise make the frame rows x rows cells wide."""
    from core.market.predict import TABULAR_COLUMNS, Predictor

    shapes: list[tuple[int, int]] = []
    predict_frame = Predictor.predict_frame

    def recording(predictor: Predictor, frame: pd.DataFrame) -> pd.DataFrame:
        shapes.append(frame.shape)
        return predict_frame(predictor, frame)

    monkeypatch.setattr(Predictor, "predict_frame", recording)
    rows = json_rows(market_rows(api_home, TABULAR_RUN).tail(2)) * 1_000
    payload = [dict(row, **{f"made_up_{i}": i}) for i, row in enumerate(rows)]
    response = client.post("/predict", json={"run_id": TABULAR_RUN, "rows": payload})
    assert response.status_code == 200, response.text
    assert shapes == [(2_000, len(TABULAR_COLUMNS) + 2)]


def _raw_post(client: TestClient, path: str, text: str) -> Any:
    return client.post(path, content=text, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/recommendations", '{"profile": {}, "limit": NaN}', "limit"),
        ("/recommendations", '{"profile": {}, "limit": -Infinity}', "limit"),
        ("/predict", '{"run_id": Infinity, "rows": [{}]}', "run_id"),
        ("/predict", '{"run_id": NaN, "rows": [{}]}', "run_id"),
        ("/predict", '{"run_id": 1e400, "rows": [{}]}', "run_id"),
    ],
)
def test_non_finite_numbers_get_a_short_422(
    client: TestClient, path: str, body: str, field: str
) -> None:
    response = _raw_post(client, path, body)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field] and error["msg"]


def test_an_impossible_date_for_a_sequence_model_gets_422_naming_the_row(
    client: TestClient, api_home: DataHome
) -> None:
    payload = json_rows(market_rows(api_home, SEQUENCE_RUN).groupby("ticker").tail(100))
    payload[7]["date"] = "9999-99-99"
    response = client.post("/predict", json={"run_id": SEQUENCE_RUN, "rows": payload})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("row 8, column 'date'")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("news_sentiment_mean", "0.3"),  # context: was silently read as unknown
        ("news_sentiment_mean", True),
        ("rsi_14", True),  # stock: was read as 1
        ("rsi_14", "high"),
        ("rsi_14", [50]),
        ("vix_level", {"value": 20}),
    ],
)
def test_feature_cells_must_be_numbers_or_null(
    client: TestClient, api_home: DataHome, column: str, value: object
) -> None:
    payload = json_rows(market_rows(api_home, TABULAR_RUN).tail(3))
    payload[1][column] = value
    response = client.post("/predict", json={"run_id": TABULAR_RUN, "rows": payload})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"row 2, column {column!r}")


def test_null_context_cells_are_unknown_and_still_scored(
    client: TestClient, api_home: DataHome
) -> None:
    payload = json_rows(market_rows(api_home, TABULAR_RUN).tail(2))
    payload[0]["news_sentiment_mean"] = None
    response = client.post("/predict", json={"run_id": TABULAR_RUN, "rows": payload})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 2


def test_a_validation_error_is_short_and_does_not_echo_the_input(client: TestClient) -> None:
    long_text = "x" * 80_000
    response = client.post("/recommendations", json={"profile": {}, "limit": long_text})
    assert response.status_code == 422
    assert len(response.content) < 1_000 and "xxxxxxxxxx" not in response.text
    assert response.json()["detail"][0]["loc"] == ["body", "limit"]


@pytest.fixture
def one_mb_client(
    api_home: DataHome, api_db_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    use_home(monkeypatch, api_home.root, api_db_url)
    monkeypatch.setenv("TRENDLAB_API_MAX_BODY_MB", "1")
    return TestClient(create_api())


def _profile_body(size: int) -> bytes:
    body = json.dumps({"profile": {"bio": "ml " * (size // 3)}, "limit": 3}).encode()
    assert abs(len(body) - size) < 100
    return body


def test_a_body_over_the_cap_gets_413(one_mb_client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    fits = one_mb_client.post("/recommendations", content=_profile_body(900_000), headers=headers)
    assert fits.status_code == 200, fits.text
    over = one_mb_client.post("/recommendations", content=_profile_body(2**21), headers=headers)
    assert over.status_code == 413 and "1 MB" in over.json()["detail"]


def test_a_chunked_body_without_length_is_counted_while_it_streams(
    one_mb_client: TestClient,
) -> None:
    """An endless body: the API must stop reading past the cap, not buffer it all."""
    chunk = b" " * 2**16
    received = {"bytes": 0}
    sent: list[dict] = []

    async def receive() -> dict:
        received["bytes"] += len(chunk)
        if received["bytes"] > 2**24:
            raise ConnectionError("the client gave up after 16 MB")
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/recommendations",
        "raw_path": b"/recommendations",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(one_mb_client.app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert received["bytes"] <= 2**20 + len(chunk)


def test_health_reports_the_schema_and_the_active_recommender(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body == {"status": "ok", "schema_version": SCHEMA_VERSION, "active_recommender": 1}


def test_the_real_server_serves_pages_and_api_on_one_port(tmp_path: Path) -> None:
    with running_server(tmp_path / "home", TRENDLAB_JOB_RUNNER="0") as url:
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as response:
            assert b'"status":"ok"' in response.read()
        with urllib.request.urlopen(f"{url}/api/openapi.json", timeout=5) as response:
            assert SEED_PATH.encode() in response.read()


def test_the_read_routes_answer_what_the_cli_prints(client: TestClient, monkeypatch) -> None:
    """`trendlab runs list` and the like ask these while a server holds the DuckDB file."""
    runs = client.get("/runs").json()
    assert [r["run_id"] for r in runs] == [SEQUENCE_RUN, TABULAR_RUN, RECOMMENDER_RUN]
    shown = client.get(f"/runs/{TABULAR_RUN}").json()
    assert shown["model"] == "dual_tower" and shown["artifacts"]
    assert client.get("/runs/99").status_code == 404
    assert {d["name"] for d in client.get("/datasets").json()} == {"rs", "small"}
    assert client.get("/datasets/small").json()["features"] > 0
    assert client.get("/datasets/nothing").status_code == 404
    info = client.get("/info").json()
    assert info["runs"] == 3 and info["schema_version"] >= 3
    assert client.get("/sweeps/1").status_code == 404
    bad = {"model": "no_such_model", "dataset": "small"}
    assert client.post("/sweeps", json=bad).status_code == 422
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    refused = client.post("/sweeps", json={"model": "compact_dual_tower", "dataset": "small"})
    assert refused.status_code == 403
