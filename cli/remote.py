"""The CLI beside a running server.

Commands that only read (``data list|show``, ``runs list|show``, ``info``) go through
``read``, and small writes (``runs name|tag``) through ``through``: on the database when
this process can open it, otherwise, when a running server holds the DuckDB file, through
that server's HTTP API, which answers with the same facts (``services.catalog``) and does the
write itself. ``trendlab serve`` records where it answers in the data home's
``server.json``; the API token, when the server has one, is taken from
``TRENDLAB_API_TOKEN``. With PostgreSQL nothing holds a lock, so every command opens the
database itself.

Other commands that write say how instead (stop the server, or ``--via-server`` where a
command has it: ``trendlab sweep``), through ``ask``, which also sends those requests.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from cli.common import fail, recover_stopped_server_jobs
from services.access import ReadOnlyError
from services.jobs.run_owners import recover_stale_runs
from storage import DataHome, DataHomeError, StorageError, open_engine
from storage.db import DatabaseLocked

TIMEOUT_S = 30


def read(local: Callable[[DataHome, Any], Any], route: str) -> Any:
    """``local(home, engine)`` on the database, or GET ``/api<route>`` from the server that
    holds it; a red one-line failure (exit 1) when neither answers."""
    return through(local, "GET", route)


def through(
    local: Callable[[DataHome, Any], Any],
    method: str,
    route: str,
    body: dict[str, Any] | None = None,
) -> Any:
    """``local(home, engine)`` on the database, or ``method /api<route>`` (with ``body``) to
    the server that holds it: the one process that writes the DuckDB file does the write."""
    try:
        home = DataHome.from_env().ensure()
        engine = open_engine(home.database_url)
    except DatabaseLocked as locked:
        return ask(home, method, route, body, locked=locked)
    except (DataHomeError, StorageError) as err:
        raise fail(str(err)) from None
    try:
        recover_stale_runs(engine=engine)  # runs a killed command left 'running'
        recover_stopped_server_jobs(engine=engine, home=home)  # and a stopped server
        return local(home, engine)
    except (StorageError, ReadOnlyError, ValueError) as err:
        raise fail(str(err)) from None
    finally:
        engine.dispose()


def server_url(home: DataHome) -> str | None:
    """The base URL `trendlab serve` recorded for this data home, if any."""
    try:
        return str(json.loads(home.server_file.read_text())["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ask(
    home: DataHome,
    method: str,
    route: str,
    body: dict[str, Any] | None = None,
    *,
    locked: DatabaseLocked | None = None,
) -> Any:
    """Send a request to the data home's running server's API; its JSON answer. A 404
    answers None; other refusals and an unreachable server become the red failure."""
    url = server_url(home)
    if url is None:
        reason = str(locked) if locked else "No running server recorded for this data home."
        raise fail(reason + " (no server.json: start one with `trendlab serve`)")
    request = urllib.request.Request(
        f"{url}/api{route}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    token = os.environ.get("TRENDLAB_API_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404 and method == "GET":
            return None
        try:
            detail = json.loads(error.read()).get("detail")
        except ValueError:
            detail = error.reason
        raise fail(f"The server at {url} answered {error.code}: {detail}") from None
    except OSError as error:
        held = f"{locked} " if locked else ""
        raise fail(f"{held}The server at {url} did not answer ({error}).") from None
