"""Access control for demos: the password gate (pages, and Streamlit's media and metrics
routes), the API token, read-only mode, and the container's refusal to start without them."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from api.app import create_api
from cli import app as cli_app
from storage import DataHome
from tests.conftest import running_server

ROOT = Path(__file__).resolve().parents[2]


def _app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def test_without_the_password_the_gate_stops_the_app(
    data_home: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """app.py registers the pages, then gates, then runs the page, so no page runs before the
    password. Signing in and deep links run in a real browser (tests/test_browser.py): AppTest
    reruns the last page's script on its own, without app.py, so it cannot show them."""
    monkeypatch.setenv("TRENDLAB_PASSWORD", "s3cret")
    at = _app()
    assert [t.value for t in at.title] == ["Trendlab"] and not at.metric, "no page content"
    assert at.text_input[0].label == "Password" and at.caption[0].value.endswith("private.")
    assert [b.label for b in at.button] == ["Sign in"]


def test_without_a_password_set_there_is_no_gate(data_home: DataHome) -> None:
    assert {m.label for m in _app().metric} == {"Datasets", "Runs", "Jobs"}


def test_the_api_answers_401_without_the_token(data_home, monkeypatch) -> None:
    monkeypatch.setenv("TRENDLAB_API_TOKEN", "t0ken")
    client = TestClient(create_api())
    missing = client.get("/health")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = client.get("/health", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = client.get("/health", headers={"Authorization": "Bearer t0ken"})
    assert right.status_code == 200 and right.json()["status"] == "ok"
    assert client.get("/recommendations/startups/for-developer/u1").status_code == 401


def test_the_api_document_and_its_reference_page_need_the_token(data_home, monkeypatch) -> None:
    """Issue 39: /api/docs answered 404. It is a page rendered from the document, behind the
    same token, with no script from a CDN (FastAPI's Swagger and ReDoc pages stay off)."""
    monkeypatch.setenv("TRENDLAB_API_TOKEN", "t0ken")
    client = TestClient(create_api())
    token = {"Authorization": "Bearer t0ken"}
    assert client.get("/openapi.json").status_code == 401
    document = client.get("/openapi.json", headers=token)
    assert document.status_code == 200 and "/health" in document.json()["paths"]
    assert client.get("/docs").status_code == 401
    page = client.get("/docs", headers=token)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in document.json()["paths"]:
        assert f"/api{path}".replace("{", "&#123;") in page.text or f"/api{path}" in page.text
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[1]
    assert "<code>limit</code>" in page.text
    for other in ("/redoc", "/docs/oauth2-redirect"):
        assert client.get(other, headers=token).status_code == 404


def _guess(client: TestClient, token: str) -> int:
    return client.get("/health", headers={"Authorization": f"Bearer {token}"}).status_code


def test_token_guessing_locks_the_client_out_for_a_minute(data_home, monkeypatch) -> None:
    monkeypatch.setenv("TRENDLAB_API_TOKEN", "t0ken")
    api = create_api()
    guesser = TestClient(api, client=("203.0.113.9", 4000))
    assert [_guess(guesser, f"guess{i}") for i in range(5)] == [401] * 5
    locked = guesser.get("/health", headers={"Authorization": "Bearer t0ken"})
    assert locked.status_code == 429 and locked.headers["retry-after"] == "60"
    assert _guess(TestClient(api, client=("198.51.100.7", 4000)), "t0ken") == 200


def test_a_right_token_resets_the_count_and_the_lockout_ends(data_home, monkeypatch) -> None:
    from services.access import Throttle

    monkeypatch.setenv("TRENDLAB_API_TOKEN", "t0ken")
    now = [1000.0]
    client = TestClient(create_api(throttle=Throttle(clock=lambda: now[0])))
    for _ in range(3):  # four misses, then the right token: never five in a row
        assert [_guess(client, "nope") for _ in range(4)] == [401] * 4
        assert _guess(client, "t0ken") == 200
    assert [_guess(client, "nope") for _ in range(5)] == [401] * 5
    now[0] += 30
    assert _guess(client, "t0ken") == 429
    retry_after = client.get("/health").headers["retry-after"]
    assert retry_after == "30"
    now[0] += 30
    assert _guess(client, "t0ken") == 200


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("pages/data.py", "building or uploading datasets"),
        ("pages/train.py", "starting training jobs"),
        ("pages/predict.py", None),
        ("pages/recommend.py", None),
    ],
)
def test_read_only_mode_refuses_uploads_and_jobs(data_home, monkeypatch, page, message) -> None:
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    at = _app()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not at.get("file_uploader"), "no uploads in read-only mode"
    assert not [b for b in at.button if b.label in ("Start training", "Validate and store")]
    if message:
        assert any(message in i.value and "Read-only demo" in i.value for i in at.info)


def test_the_container_refuses_to_start_without_its_secrets(data_home, monkeypatch) -> None:
    monkeypatch.setenv("TRENDLAB_REQUIRE_AUTH", "1")
    monkeypatch.delenv("TRENDLAB_PASSWORD", raising=False)
    monkeypatch.setenv("TRENDLAB_API_TOKEN", "t")
    refused = CliRunner().invoke(cli_app, ["serve", "--no-demo"])
    assert refused.exit_code == 1 and "TRENDLAB_PASSWORD is not" in refused.output


def _status_without_cookie(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_media_and_metrics_answer_only_a_signed_in_browser(tmp_path: Path, browser_page) -> None:
    """Issue 23, item 12: a signed-in session's download (/media/<id>) answered 200 to a
    request without any cookie, also after the tab closed, and /_stcore/metrics was open."""
    page = browser_page
    environment = {"TRENDLAB_PASSWORD": "s3cret", "TRENDLAB_JOB_RUNNER": "0"}
    with running_server(tmp_path / "home", **environment) as url:
        metrics = f"{url}/_stcore/metrics"
        page.goto(f"{url}/train")
        page.get_by_label("Password", exact=True).fill("s3cret")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Estimated time").first.wait_for(timeout=120_000)
        page.get_by_role("button", name="Start training").click()
        with page.expect_download(timeout=120_000) as started:
            page.get_by_role("button", name="Download these training settings (YAML)").click()
        media = started.value.url
        assert "/media/" in media and "epochs" in Path(started.value.path()).read_text()

        browser = page.context.request  # the browser's cookies, outside the page
        assert browser.get(media).status == 200, "the signed-in browser gets its download"
        assert browser.get(metrics).status == 200
        statuses = {
            "media, no cookie": _status_without_cookie(media),
            "metrics, no cookie": _status_without_cookie(metrics),
        }
        page.close()  # the session's WebSocket closes: its browser is signed out
        deadline = time.monotonic() + 30
        while browser.get(media).status != 403 and time.monotonic() < deadline:
            time.sleep(0.2)
        statuses["media, tab closed"] = browser.get(media).status
        statuses["metrics, tab closed"] = browser.get(metrics).status
        assert statuses == dict.fromkeys(statuses, 403)


def test_runs_are_named_and_tagged_through_the_api_and_never_in_read_only_mode(
    data_home: DataHome, monkeypatch
) -> None:
    """Issue 39: `trendlab runs name|tag` sends PATCH /api/runs/N while a server holds the
    database; a read-only deployment refuses it (403), bad labels are 422, unknown runs 404."""
    from storage import open_engine
    from storage.repository import create_run, session_scope

    engine = open_engine(data_home.database_url)
    with session_scope(engine) as session:
        run_id = create_run(session=session, model_kind="dual_tower", config={}, seed=1).id
    engine.dispose()
    client = TestClient(create_api())
    answer = client.patch(f"/runs/{run_id}", json={"name": "first", "add": ["b", "a"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"run_id": run_id, "name": "first", "tags": ["a", "b"]}
    listed = client.get("/runs").json()
    assert listed[0]["name"] == "first" and listed[0]["tags"] == ["a", "b"]
    assert client.patch(f"/runs/{run_id}", json={"remove": ["a"]}).json()["tags"] == ["b"]
    assert client.patch(f"/runs/{run_id}", json={"add": ["bad tag"]}).status_code == 422
    assert client.patch("/runs/999", json={"name": "x"}).status_code == 404
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    refused = client.patch(f"/runs/{run_id}", json={"name": "second"})
    assert refused.status_code == 403 and "Read-only deployment" in refused.json()["detail"]
    assert client.get("/runs").json()[0]["name"] == "first"
