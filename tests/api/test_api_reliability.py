"""The API under hostile but valid-JSON input (issue 23): every body decoded through one
validator, so text that is not Unicode gets 422, never 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_api
from storage import DataHome
from tests.api.test_api import (
    TABULAR_RUN,
    build_api_home,
    json_rows,
    market_rows,
    use_home,
)

LONE = "\\ud800"  # as a client writes it in JSON: a high surrogate with no low one after it


@pytest.fixture(scope="module")
def api_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataHome]:
    root = tmp_path_factory.mktemp("api-reliability") / "home"
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, root)
        yield build_api_home(root)


@pytest.fixture
def client(api_home: DataHome, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    use_home(monkeypatch, api_home.root)
    return TestClient(create_api())


def _post(client: TestClient, path: str, body: str):
    return client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})


def _predict_body(api_home: DataHome, ticker: str) -> str:
    rows = json_rows(market_rows(api_home, TABULAR_RUN).tail(2).drop(columns=["date"]))
    text = json.dumps({"run_id": TABULAR_RUN, "rows": rows})
    return text.replace(json.dumps(rows[0]["ticker"]), f'"{ticker}"', 1)


def test_a_lone_surrogate_in_a_predict_row_gets_422_naming_where(
    client: TestClient, api_home: DataHome
) -> None:
    response = _post(client, "/predict", _predict_body(api_home, LONE))
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "rows", 0, "ticker"]
    assert "Unicode" in problem["msg"] and "\ud800" not in response.text


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/recommendations", f'{{"profile": {{"skills": "{LONE}"}}}}', ["profile", "skills"]),
        ("/recommendations", f'{{"profile": {{"{LONE}": "ml"}}}}', ["profile"]),
        ("/recommendations", f'{{"profile": {{}}, "filters": {{"type": "a{LONE}"}}}}', None),
        ("/sweeps", f'{{"model": "dual_tower", "dataset": "{LONE}"}}', ["dataset"]),
        (
            "/sweeps",
            '{"model": "x", "dataset": "d", "space": {"a": {"choices": ["\\udfff"]}}}',
            None,
        ),
    ],
)
def test_a_lone_surrogate_anywhere_in_any_body_gets_422(
    client: TestClient, path: str, body: str, where: list[str] | None
) -> None:
    response = _post(client, path, body)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any("Unicode" in p["msg"] for p in problems), problems
    if where is not None:
        assert ["body", *where] in [p["loc"] for p in problems]


def test_text_with_a_proper_surrogate_pair_is_still_taken(client: TestClient) -> None:
    body = '{"profile": {"skills": "python;ml", "bio": "ml models \\ud83d\\ude00"}, "limit": 3}'
    response = _post(client, "/recommendations", body)
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 3
