"""A throwaway PostgreSQL server for the tests: ``initdb`` and ``pg_ctl`` in a temporary folder,
listening on a free port of 127.0.0.1, one fresh database per test.

The binaries are Debian's (``make test`` installs the ``postgresql`` package when they are
missing; Debian keeps them in /usr/lib/postgresql/<version>/bin, off the PATH) or any on the
PATH. PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user
(Debian's package creates it), or ``nobody``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

USER = "trendlab"


def find_binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: Debian's newest version first."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    candidates = [p.parent for p in reversed(debian)]
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    return next((c for c in candidates if (c / "pg_ctl").exists()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> list[str]:
    """The command prefix that drops root (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"]
    raise RuntimeError("running as root and no postgres or nobody user to run PostgreSQL as")


@dataclass
class PostgresServer:
    folder: Path
    port: int
    binaries: Path
    created: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"test_{len(self.created) + 1}_{os.getpid()}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url(name)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server; stop it and remove its folder afterwards."""
    binaries = find_binaries()
    if binaries is None:
        pytest.fail(
            "PostgreSQL's initdb was not found (looked in /usr/lib/postgresql/*/bin and on the "
            "PATH); `make test` installs Debian's postgresql package, or apt-get install it."
        )
    prefix = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="trendlab-pg-"))
    if prefix:
        user = prefix[2]
        shutil.chown(folder, user=user)
    data, port = folder / "data", _free_port()
    environment = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    subprocess.run(
        [
            *prefix,
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        env=environment,
    )
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    pg_ctl = [*prefix, str(binaries / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-o", options, "-l", str(folder / "log"), "-w", "-t", "60", "start"],
        check=True,
        capture_output=True,
        env=environment,
    )
    server = PostgresServer(folder, port, binaries)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        subprocess.run(
            [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            env=environment,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_ready(server: PostgresServer, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(
                f"host=127.0.0.1 port={server.port} user={USER} dbname=postgres", connect_timeout=2
            ):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
