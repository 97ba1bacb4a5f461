"""Hostile requests to every API route: generated JSON of wrong types, NaN and Infinity
literals, huge numbers, deep nesting and long text, in bodies, paths and query strings. The API
must answer each with 2xx or 4xx, never 5xx, and still answer /health afterwards.

Routes come from the app itself, so a new route is fuzzed without a change here.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_api
from core.market.predict import TABULAR_COLUMNS
from services.jobs.manager import start_job_manager
from services.sweeps.study import cancel_sweep
from storage import DataHome
from tests.api.test_api import (
    RECOMMENDER_RUN,
    SEQUENCE_RUN,
    TABULAR_RUN,
    build_api_home,
    json_rows,
    market_rows,
    use_home,
)


@dataclass(frozen=True)
class RouteShape:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    body_fields: tuple[str, ...] | None  # None: the route takes no body


def route_shapes(api: FastAPI) -> list[RouteShape]:
    shapes = []
    for context in iter_route_contexts(api.routes):  # the routes of included routers too
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        dependant = route.dependant
        body_fields = None
        if route.body_field is not None:
            model = route.body_field.field_info.annotation
            body_fields = tuple(
                field.alias or name for name, field in getattr(model, "model_fields", {}).items()
            )
        for method in sorted(route.methods):
            shapes.append(
                RouteShape(
                    method=method,
                    path=route.path,
                    path_params=tuple(p.alias for p in dependant.path_params),
                    query_params=tuple(p.alias for p in dependant.query_params),
                    body_fields=body_fields,
                )
            )
    return shapes


ROUTES = route_shapes(create_api())
BODY_ROUTES = [r for r in ROUTES if r.body_fields is not None]
SEED_PATH = "/recommendations/startups/for-developer/{user_id}"
RUN_IDS = [RECOMMENDER_RUN, TABULAR_RUN, SEQUENCE_RUN, 99]


class LongText(str):
    """Long text that a failing example names by its length instead of printing it."""

    def __repr__(self) -> str:
        return f"<{len(self):,} characters>"


LONG_TEXT = LongText("x" * 100_000)
LONG_URL_PART = LongText("x" * 8_000)  # HTTP clients and servers refuse longer URL parts
DEPTH = 1_000

# Tokens json.dumps cannot write: a sentinel string in the generated value becomes the literal.
RAW_LITERALS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "9" * 400]
SENTINEL = re.compile(r'"@@(\d+)@@"')


def raw_json(value: Any) -> bytes:
    text = json.dumps(value)  # NaN and Infinity floats come out as those literals
    return SENTINEL.sub(lambda m: RAW_LITERALS[int(m.group(1))], text).encode()


raw_literals = st.sampled_from([f"@@{i}@@" for i in range(len(RAW_LITERALS))])
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**450), max_value=10**450),
    st.floats(allow_nan=True, allow_infinity=True),
    raw_literals,
)
texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "null", "NaN", "1e400", "true", "9999-99-99", "u0003", LONG_TEXT]),
)
url_texts = st.one_of(
    st.text(max_size=20), st.sampled_from(["", "..", "%00", "u0003", LONG_URL_PART])
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=10,
)
dates = st.one_of(
    st.dates().map(str),
    st.datetimes(timezones=st.sampled_from([None, UTC])).map(str),
    st.sampled_from(["9999-99-99", "2020-02-30", "0000-00-00", "1677-09-20", "2262-04-12"]),
    st.sampled_from(["3000-01-01", "now", "", "20201231", "31/12/2020", LONG_TEXT]),
    scalars,
)
column_names = st.one_of(st.sampled_from(["date", "ticker", *TABULAR_COLUMNS]), texts)
rows = st.lists(st.dictionaries(column_names, scalars, max_size=8), max_size=5)

# Values that a field of the right name would hold, so that one wrong field is what is tested.
PLAUSIBLE = {
    "profile": {"skills": "python;ml", "interests": "ai"},
    "limit": 3,
    "filters": {},
    "run_id": TABULAR_RUN,
    "rows": [{"rsi_14": 50.0}],
}
WRONG_VALUES = [
    None,
    True,
    "x",
    "@@0@@",  # NaN
    "@@3@@",  # 1e400
    -1,
    0,
    10**30,
    [],
    [{}],
    {},
    {"a": None},
    LONG_TEXT,
    {LONG_TEXT: LONG_TEXT},
]

fuzz = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture(scope="module")
def api_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataHome]:
    root = tmp_path_factory.mktemp("fuzz") / "home"
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, root)
        yield build_api_home(root)


@pytest.fixture(scope="module")
def client(api_home: DataHome) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as monkeypatch:  # the handlers read the home per request
        use_home(monkeypatch, api_home.root)
        yield TestClient(create_api(), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def real_rows(api_home: DataHome) -> dict[int, list[dict[str, Any]]]:
    """Rows each market run scores as they are: 3 for the dual tower, one ticker's last 70
    days for the LSTM (a window of 12 weeks)."""
    tabular = market_rows(api_home, TABULAR_RUN).tail(3)
    sequence = market_rows(api_home, SEQUENCE_RUN)
    sequence = sequence[sequence["ticker"] == "AAA"].tail(70)
    return {TABULAR_RUN: json_rows(tabular), SEQUENCE_RUN: json_rows(sequence)}


def answered_without_server_error(
    client: TestClient, method: str, url: str, body: bytes | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"content-type": "application/json"} if body is not None else {}
    response = client.request(method, url, content=body, headers=headers, **kwargs)
    shown = f"{method} {url[:120]} {(body or b'')[:300]!r}"
    assert response.status_code < 500, f"{shown} -> {response.status_code} {response.text[:300]}"
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok", shown
    return response


def test_every_route_of_the_app_is_fuzzed() -> None:
    shapes = {(r.method, r.path): r for r in ROUTES}
    assert {("GET", "/health"), ("GET", "/openapi.json"), ("GET", SEED_PATH)} <= set(shapes)
    assert shapes[("POST", "/recommendations")].body_fields == ("profile", "limit", "filters")
    assert shapes[("POST", "/predict")].body_fields == ("run_id", "rows")
    assert "engine" in shapes[("GET", SEED_PATH)].query_params


@st.composite
def requests(draw: st.DrawFn) -> tuple[RouteShape, str, dict[str, Any], bytes | None]:
    """Any route: text path parameters, any query values, and a body of its fields with some
    of them wrong (or any JSON at all)."""
    route = draw(st.sampled_from(ROUTES))
    path = route.path
    for name in route.path_params:
        path = path.replace(f"{{{name}}}", quote(draw(url_texts), safe="") or "x")
    names = st.sampled_from(route.query_params) if route.query_params else url_texts
    params = draw(st.dictionaries(names | url_texts, st.lists(url_texts, max_size=2), max_size=4))
    if route.body_fields is None:
        return route, path, params, draw(st.none() | json_values.map(raw_json))
    fields = {name: PLAUSIBLE.get(name) for name in route.body_fields}
    wrong = draw(st.lists(st.sampled_from(route.body_fields), max_size=len(route.body_fields)))
    for name in wrong:
        fields[name] = draw(json_values)
    return route, path, params, draw(st.just(raw_json(fields)) | json_values.map(raw_json))


@settings(fuzz, max_examples=200)
@given(request=requests())
def test_generated_requests_to_every_route_get_no_server_error(
    client: TestClient, request: tuple[RouteShape, str, dict[str, Any], bytes | None]
) -> None:
    route, path, params, body = request
    answered_without_server_error(client, route.method, path, body, params=params)


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.path)
def test_each_body_field_of_the_wrong_type_gets_no_server_error(
    client: TestClient, route: RouteShape
) -> None:
    statuses = set()
    for name in route.body_fields or ():
        for wrong in WRONG_VALUES:
            fields = {field: PLAUSIBLE.get(field) for field in route.body_fields or ()}
            fields[name] = wrong
            response = answered_without_server_error(
                client, route.method, route.path, raw_json(fields)
            )
            statuses.add(response.status_code)
    assert 422 in statuses


NESTED = "[" * DEPTH + "]" * DEPTH
DEEP_OBJECT = '{"a":' * DEPTH + "1" + "}" * DEPTH
EXTREME_BODIES = {
    "nested-1000": NESTED,
    "nested-profile": '{"profile": {"bio": ' + NESTED + "}}",
    "nested-row": '{"run_id": 2, "rows": [' + DEEP_OBJECT + "]}",
    "nested-cut-short": '{"run_id": 2, "rows": [{"rsi_14": ' + NESTED[:-1] + "}]}",
    "long-keys": json.dumps({"profile": {LONG_TEXT: LONG_TEXT}, "filters": {LONG_TEXT: "x"}}),
    "long-labels": json.dumps({"run_id": 3, "rows": [{"date": LONG_TEXT, "ticker": LONG_TEXT}]}),
    "1e400": '{"run_id": 1e400, "rows": [{"rsi_14": 1e400}]}',
    "4400-digits": '{"run_id": ' + "9" * 4_400 + ', "rows": [{}]}',  # over int() digit limit
    "bare-NaN": "NaN",
    "empty": "",
    "bom": "\ufeff{}",
    "nul": "\x00",
}


@pytest.mark.parametrize("body", EXTREME_BODIES.values(), ids=EXTREME_BODIES.keys())
def test_extreme_bodies_to_every_body_route_get_no_server_error(
    client: TestClient, body: str
) -> None:
    for route in BODY_ROUTES:
        answered_without_server_error(client, route.method, route.path, body.encode())


@settings(fuzz, max_examples=100)
@given(run_id=st.sampled_from(RUN_IDS), generated=rows)
def test_predict_rows_with_any_columns_and_cells_get_no_server_error(
    client: TestClient, run_id: int, generated: list[dict[str, Any]]
) -> None:
    answered_without_server_error(
        client, "POST", "/predict", raw_json({"run_id": run_id, "rows": generated})
    )


@settings(fuzz, max_examples=80)
@given(data=st.data())
def test_real_rows_with_cells_changed_get_no_server_error(
    client: TestClient, real_rows: dict[int, list[dict[str, Any]]], data: st.DataObject
) -> None:
    """Rows that would score, with a few cells replaced: the checks past the first one (dates,
    weekly steps, windows) get exercised too."""
    run_id = data.draw(st.sampled_from(sorted(real_rows)))
    changed = [dict(row) for row in real_rows[run_id]]
    for _ in range(data.draw(st.integers(1, 3))):
        row = data.draw(st.sampled_from(changed))
        column = data.draw(
            st.sampled_from(["date", "ticker", "rsi_14", "vix_level"]) | column_names
        )
        row[column] = data.draw(dates if column == "date" else scalars)
    response = answered_without_server_error(
        client, "POST", "/predict", raw_json({"run_id": run_id, "rows": changed})
    )
    if response.status_code == 422:
        assert len(response.text) < 1_000, "a refusal is short"


@settings(fuzz, max_examples=30)
@given(authorization=st.text(st.characters(max_codepoint=255), max_size=200) | st.just(LONG_TEXT))
def test_any_authorization_header_gets_no_server_error(
    api_home: DataHome, authorization: str
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, api_home.root)
        monkeypatch.setenv("TRENDLAB_API_TOKEN", "t0ken")
        client = TestClient(create_api(), raise_server_exceptions=False)
        sent = authorization.encode("latin-1")  # as a server reads header bytes
        response = client.get("/health", headers={"Authorization": sent})
        assert response.status_code in (200, 401, 429), response.text[:300]
        healthy = client.get("/health", headers={"Authorization": "Bearer t0ken"})
        assert healthy.status_code == 200


def test_a_sweep_of_one_trial_runs_its_trial(client: TestClient, api_home: DataHome) -> None:
    """Issue 41, item 5: ``"trials": 1`` answered 201, then the sweep failed at its first tick
    ('No trial completed.', trial 0 waiting, no job)."""
    started = answered_without_server_error(
        client,
        "POST",
        "/sweeps",
        raw_json({"model": "compact_dual_tower", "dataset": "small", "trials": 1}),
    )
    assert started.status_code == 201, started.text
    sweep_id = started.json()["sweep_id"]
    manager = start_job_manager(api_home)
    manager.sweeps.tick()  # what the server's job loop does first; no worker is started
    shown = answered_without_server_error(client, "GET", f"/sweeps/{sweep_id}").json()
    assert shown["status"] == "running" and shown["error"] is None, shown
    assert [(t["number"], t["job_id"] is not None) for t in shown["results"]] == [(0, True)]
    cancel_sweep(manager, sweep_id)


def asgi_get(path: str) -> tuple[int, bytes]:
    """GET ``path`` straight through the app: HTTP clients refuse URLs over 64 kB, which a
    hostile client's raw request is not."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    asyncio.run(create_api()(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("route", [r for r in ROUTES if r.path_params], ids=lambda r: r.path)
def test_a_100_kb_id_in_a_path_gets_a_short_answer(client: TestClient, route: RouteShape) -> None:
    """Issue 41, item 11: a 404 echoed a 100 KB user id in full."""
    path = route.path
    for name in route.path_params:
        path = path.replace(f"{{{name}}}", LONG_TEXT)
    status, body = asgi_get(path)
    assert status < 500 and len(body) < 1_000, (route.path, status, len(body))


def test_errors_name_files_relative_to_the_data_home(
    client: TestClient, api_home: DataHome
) -> None:
    """Issue 41, item 11: a damaged checkpoint's 409 named the server's absolute path."""
    checkpoint = api_home.checkpoints / f"run_{TABULAR_RUN}" / "best.pt"
    kept = checkpoint.read_bytes()
    checkpoint.write_bytes(kept[:200])
    try:
        refused = answered_without_server_error(
            client, "POST", "/predict", raw_json({"run_id": TABULAR_RUN, "rows": [{}]})
        )
    finally:
        checkpoint.write_bytes(kept)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert f"checkpoints/run_{TABULAR_RUN}/best.pt" in detail, detail
    assert str(api_home.root) not in detail
