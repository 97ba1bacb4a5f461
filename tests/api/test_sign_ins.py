"""The gate in front of Streamlit's media, upload and metrics routes (issue 23, item 12), on a
small Starlette app; tests/api/test_access.py checks it on the real server in a browser."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api.sign_ins import BROWSER_COOKIE, SignInGate, SignIns, browser_token

PATHS = ["/", "/media/abc.csv", "/_stcore/metrics", "/_stcore/upload_file/s/f", "/_stcore/health"]


def _client(sign_ins: SignIns) -> TestClient:
    async def answer(request) -> PlainTextResponse:
        return PlainTextResponse("served")

    routes = [Route(path, answer, methods=["GET", "PUT"]) for path in PATHS]
    app = Starlette(routes=routes, middleware=[Middleware(SignInGate, sign_ins=sign_ins)])
    return TestClient(app)


def _token(client: TestClient) -> str:
    """The token a page gives the client's browser (kept in its cookie jar from now on)."""
    token = browser_token(client.get("/").cookies)
    assert token is not None, "a page gives a browser its token"
    return token


def test_without_a_password_nothing_is_gated_and_no_cookie_is_set(monkeypatch) -> None:
    monkeypatch.delenv("TRENDLAB_PASSWORD", raising=False)
    client = _client(SignIns(is_connected=lambda session: False))
    for path in PATHS:
        response = client.get(path)
        assert response.status_code == 200 and "set-cookie" not in response.headers, path


def test_with_a_password_only_a_connected_signed_in_browser_passes(monkeypatch) -> None:
    monkeypatch.setenv("TRENDLAB_PASSWORD", "s3cret")
    connected = {"session-1"}
    sign_ins = SignIns(is_connected=connected.__contains__)
    client = _client(sign_ins)
    token = _token(client)
    gated = ["/media/abc.csv", "http://testserver//media/abc.csv", "/_stcore/metrics/"]

    assert [client.get(path).status_code for path in gated] == [403] * 3, "not signed in"
    assert client.put("/_stcore/upload_file/s/f").status_code == 403
    assert client.get("/_stcore/health").status_code == 200, "health checks stay open"

    sign_ins.add(token, "session-1")
    assert client.get("/media/abc.csv").text == "served"
    assert client.get("/_stcore/metrics").status_code == 200
    assert client.put("/_stcore/upload_file/s/f").status_code == 200
    assert "set-cookie" not in client.get("/").headers, "a browser keeps its token"
    other = TestClient(client.app)
    assert other.get("/media/abc.csv").status_code == 403, "another browser is not let in"
    other.cookies.set(BROWSER_COOKIE, "x" * 43)
    assert other.get("/media/abc.csv").status_code == 403, "nor a made-up token"

    connected.clear()  # the tab closed
    assert client.get("/media/abc.csv").status_code == 403
    assert sign_ins.admits(token) is False


@pytest.mark.parametrize("value", ["", "short", "x" * 44, "x" * 42 + ";"])
def test_a_cookie_that_is_not_a_token_is_replaced(monkeypatch, value: str) -> None:
    monkeypatch.setenv("TRENDLAB_PASSWORD", "s3cret")
    client = _client(SignIns(is_connected=lambda session: True))
    client.cookies.set(BROWSER_COOKIE, value)
    response = client.get("/")
    assert browser_token(response.cookies) not in (None, value)
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    SignIns().add(value, "session")  # ignored, not an error
