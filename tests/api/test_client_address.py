"""Lockouts key on the connection's address (issue 23, item 5): X-Forwarded-For counts only
from a proxy listed in TRENDLAB_TRUSTED_PROXIES, on the real server (uvicorn in front)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from services.access import TRUSTED_PROXIES_ENV, trusted_proxies
from tests.conftest import running_server

TOKEN = "right-token"


def _status(url: str, token: str, forwarded: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    request = urllib.request.Request(f"{url}/api/health", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_forged_forwarded_address_does_not_escape_the_token_lockout(tmp_path: Path) -> None:
    environment = {"TRENDLAB_API_TOKEN": TOKEN, "TRENDLAB_JOB_RUNNER": "0"}
    with running_server(tmp_path / "home", **environment) as url:
        guesses = [_status(url, f"guess{i}", forwarded=f"203.0.113.{i}") for i in range(6)]
        assert guesses == [401] * 5 + [429], "five wrong tokens from one socket lock it"
        assert _status(url, TOKEN, forwarded="198.51.100.7") == 429, "a forged address too"


def test_a_trusted_proxy_passes_on_each_clients_address(tmp_path: Path) -> None:
    environment = {
        "TRENDLAB_API_TOKEN": TOKEN,
        "TRENDLAB_JOB_RUNNER": "0",
        TRUSTED_PROXIES_ENV: "127.0.0.1, ::1",
    }
    with running_server(tmp_path / "home", **environment) as url:
        guesses = [_status(url, f"guess{i}", forwarded="203.0.113.9") for i in range(6)]
        assert guesses == [401] * 5 + [429]
        assert _status(url, TOKEN, forwarded="198.51.100.7") == 200, "another client is not"
        assert _status(url, TOKEN, forwarded="198.51.100.7, 203.0.113.9") == 429, (
            "the address the trusted proxy saw, not what the client wrote before it"
        )


def test_serve_hands_uvicorn_only_the_listed_proxies(
    data_home, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, str]] = []
    monkeypatch.setattr(os, "execv", lambda *args: started.append(dict(os.environ)))
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")  # whatever was set before is replaced
    monkeypatch.delenv(TRUSTED_PROXIES_ENV, raising=False)
    assert CliRunner().invoke(cli_app, ["serve", "--no-demo"]).exit_code == 0
    monkeypatch.setenv(TRUSTED_PROXIES_ENV, "10.0.0.2,192.168.0.0/24")
    assert CliRunner().invoke(cli_app, ["serve", "--no-demo"]).exit_code == 0
    assert [s["FORWARDED_ALLOW_IPS"] for s in started] == ["", "10.0.0.2,192.168.0.0/24"]


@pytest.mark.parametrize("listed", ["*", "proxy.example", "10.0.0.0/33", "127.0.0.1,,x"])
def test_a_trusted_proxy_list_that_is_not_addresses_is_refused(
    data_home, monkeypatch: pytest.MonkeyPatch, listed: str
) -> None:
    monkeypatch.setenv(TRUSTED_PROXIES_ENV, listed)
    with pytest.raises(ValueError, match=TRUSTED_PROXIES_ENV):
        trusted_proxies()
    refused = CliRunner().invoke(cli_app, ["serve", "--no-demo"])
    assert refused.exit_code == 1 and TRUSTED_PROXIES_ENV in refused.output
