"""Shared fixtures: every test gets its own data home and database (a DuckDB file, or a fresh
PostgreSQL database where a test package asks for both backends), and no network."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage import DataHome, open_engine
from tests.postgres import PostgresServer, postgres_server

ROOT = Path(__file__).resolve().parents[1]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection beyond this machine fails the test that tries it."""
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if sock.family != socket.AF_UNIX and host not in LOCAL_HOSTS:
            raise AssertionError(f"a test tried to reach the network: {address!r}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (see tests/postgres.py)."""
    with postgres_server() as server:
        yield server


BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
"""Parameters for a ``backend`` fixture: a package's conftest.py that sets
``backend = both_backends`` runs each of its database tests on DuckDB and on PostgreSQL."""


@pytest.fixture
def backend() -> str:
    """Which database the ``data_home`` of a test uses; DuckDB unless a package asks for both."""
    return "duckdb"


@pytest.fixture(params=BACKENDS)
def both_backends(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, request: pytest.FixtureRequest
) -> DataHome:
    monkeypatch.setenv("TRENDLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRENDLAB_DB_URL", raising=False)
    monkeypatch.delenv("TRENDLAB_RAY_ADDRESS", raising=False)
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres")
        monkeypatch.setenv("TRENDLAB_DB_URL", server.fresh_database())
    monkeypatch.setenv("TRENDLAB_JOB_RUNNER", "0")  # tests tick job managers themselves
    return DataHome.from_env().ensure()


@pytest.fixture
def engine(data_home: DataHome) -> Iterator[Engine]:
    engine = open_engine(data_home.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def swept(tmp_path_factory: pytest.TempPathFactory):
    """(engine, home, result): a DuckDB home where the default config trained once and a sweep
    of 8 trials, 2 at a time, ran to its end (tests/sweeping.py); built once, read-only."""
    from tests.sweeping import run_default_and_sweep, store_demo

    root = tmp_path_factory.mktemp("swept") / "home"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("TRENDLAB_HOME", str(root))
        monkeypatch.delenv("TRENDLAB_DB_URL", raising=False)
        monkeypatch.delenv("TRENDLAB_RAY_ADDRESS", raising=False)
        home = DataHome.from_env().ensure()
        engine = open_engine(home.database_url)
        store_demo(engine)
        result = run_default_and_sweep(engine, home)
    yield engine, home, result
    engine.dispose()


CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page() -> Iterator:
    """A page in Debian's Chromium driven by Playwright (its browser download does not work
    here), in a fresh browser context."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs Debian's chromium package")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=FLAGS, chromium_sandbox=False
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        browser.close()


@contextlib.contextmanager
def running_server(home: Path, **environment: str) -> Iterator[str]:
    """`trendlab serve` on a free port with ``home`` as its data home; yields the base URL
    once /_stcore/health answers, and stops the server afterwards."""
    with server_process(home, **environment) as (url, _):
        yield url


@contextlib.contextmanager
def server_process(home: Path, **environment: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """As ``running_server``, yielding the server's process too (to kill it, say)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # No demo training unless a test asks: it would compete for the CPU with the test's own.
    env = {**os.environ, "TRENDLAB_HOME": str(home), "TRENDLAB_DEMO_JOBS": "0", **environment}
    command = [sys.executable, "-c", "import cli; cli.main()", "serve", "--port", str(port)]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                pass
            if server.poll() is not None:
                raise AssertionError(server.stderr.read().decode()[-3000:])
            if time.monotonic() > deadline:
                raise AssertionError("the server did not answer /_stcore/health in 120 s")
            time.sleep(0.3)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # duckdb's nanobind bindings print pages of "leaked instance" warnings when the
    # interpreter tears modules down in an order they do not expect (it happens once
    # hypothesis and duckdb-engine share a process; the exit status stays 0). Those lines
    # would bury pytest's summary, so once pytest has written everything, leave at once.
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
