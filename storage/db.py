"""Opening the database: engine creation, schema versioning, and plain-language errors.

Two backends share one schema: the embedded DuckDB file (the default) and PostgreSQL
(``TRENDLAB_DB_URL=postgresql+psycopg://...``, for a team). A DuckDB file may be held
read-write by one process only; in Trendlab that process is the server (or a CLI command run
while no server is up). PostgreSQL takes writes from every server, CLI and worker at once.
See docs/architecture.md.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError

from storage.models import Base, SchemaVersion

SCHEMA_VERSION = 6
"""The schema this code reads and writes. Bump it with a migration in ``MIGRATIONS``."""

Migration = Callable[[Connection], None]


def _add_settings(conn: Connection) -> None:
    """1 -> 2: the settings table (e.g. which recommender run serves)."""
    from storage.models import Setting

    Setting.__table__.create(conn, checkfirst=True)


def _add_sweeps(conn: Connection) -> None:
    """2 -> 3: the sweeps table, and each job's owner (the manager that ingests it) and its
    sweep trial. Columns a database already has are left alone."""
    from storage.models import Sweep

    Sweep.__table__.create(conn, checkfirst=True)
    present = set(conn.execute(text("SELECT * FROM jobs LIMIT 0")).keys())
    for column, kind in (("owner", "VARCHAR"), ("sweep_id", "INTEGER"), ("trial", "INTEGER")):
        if column not in present:
            conn.execute(text(f"ALTER TABLE jobs ADD COLUMN {column} {kind}"))


def _add_forecasts(conn: Connection) -> None:
    """3 -> 4: the forecasts table (what a run said as of a date, per ticker and horizon)."""
    from storage.models import Forecast

    Forecast.__table__.create(conn, checkfirst=True)


def _add_run_labels(conn: Connection) -> None:
    """4 -> 5: a run's name and tags, set by the user (`trendlab runs name|tag`, Evaluate)."""
    present = set(conn.execute(text("SELECT * FROM runs LIMIT 0")).keys())
    for column, kind in (("name", "VARCHAR"), ("tags", "JSON")):
        if column not in present:
            conn.execute(text(f"ALTER TABLE runs ADD COLUMN {column} {kind}"))


def _add_job_requests(conn: Connection) -> None:
    """5 -> 6: what each job was asked to do, apart from the progress its worker reports
    (the device used to sit in the progress, which the first report replaced)."""
    present = set(conn.execute(text("SELECT * FROM jobs LIMIT 0")).keys())
    if "request" not in present:
        conn.execute(text("ALTER TABLE jobs ADD COLUMN request JSON"))
    # a queued job's progress still holds what it was asked (no worker has reported yet)
    conn.execute(
        text("UPDATE jobs SET request = progress WHERE request IS NULL AND status = 'queued'")
    )


MIGRATIONS: dict[int, Migration] = {
    1: _add_settings,
    2: _add_sweeps,
    3: _add_forecasts,
    4: _add_run_labels,
    5: _add_job_requests,
}
"""``MIGRATIONS[v]`` upgrades a database at schema ``v`` to ``v + 1`` in place."""


def interrupted(error: BaseException) -> bool:
    """Whether ``error`` is, or was caused by, a Ctrl-C or SIGTERM: a KeyboardInterrupt, or
    DuckDB's InterruptException (what a KeyboardInterrupt becomes when it lands while DuckDB
    runs a statement), however SQLAlchemy wrapped it."""
    return any(
        isinstance(cause, KeyboardInterrupt | duckdb.InterruptException) for cause in _causes(error)
    )


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
"""The errors of a full disk, or of a full quota."""


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` is, or was caused by, a full disk: an OSError ENOSPC (or EDQUOT), or
    a database error that says so (DuckDB's IOException or FatalException, PostgreSQL's "could
    not extend file": "No space left on device"), however SQLAlchemy wrapped it."""
    said = os.strerror(errno.ENOSPC)
    return any(
        cause.errno in NO_SPACE if isinstance(cause, OSError) else said in str(cause)
        for cause in _causes(error)
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything it was raised from or during, DB-API errors inside
    SQLAlchemy's wrappers included."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]


class StorageError(RuntimeError):
    """The database cannot be opened or used; the message says what to do."""


class DatabaseLocked(StorageError):
    """Another process holds the DuckDB file read-write (usually a running server)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


SCHEMA_LOCK = 0x7472656E646C6162  # "trendlab": the advisory lock schema changes take on PostgreSQL


def backend(url: str) -> str:
    """The database behind a URL: "duckdb", "postgresql", "sqlite", ..."""
    return make_url(url).get_backend_name()


def is_duckdb(url: str) -> bool:
    """True for the embedded single-writer default; False for a server database that any
    number of processes write (PostgreSQL)."""
    return backend(url) == "duckdb"


def database_file(url: str) -> Path | None:
    """The file behind a DuckDB URL, or None for in-memory and other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "duckdb" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def open_engine(url: str) -> Engine:
    """Create an engine, check the file can be opened, and bring the schema up to date."""
    path = database_file(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(
                f"Cannot create the folder for the database {path} ({err.strerror}). "
                "Point TRENDLAB_HOME or TRENDLAB_DB_URL at a writable place."
            ) from None
    # pool_pre_ping: a PostgreSQL connection dropped by a restart is replaced, not reused.
    engine = create_engine(url, pool_pre_ping=not is_duckdb(url))
    if is_duckdb(url):
        event.listen(engine, "handle_error", _dropped_after_a_fatal_error)
    try:
        init_schema(engine)
    except DBAPIError as err:
        engine.dispose()
        raise explain(err, path or url) from None
    except StorageError:
        engine.dispose()
        raise
    return engine


def _dropped_after_a_fatal_error(context: ExceptionContext) -> None:
    """A DuckDB FatalException (a full disk during a checkpoint) leaves the database unusable
    until it is opened again: its connections are dropped as if disconnected, not rolled back
    into the pool, a rollback that fails again and is logged with a page of traceback."""
    if isinstance(context.original_exception, duckdb.FatalException):
        context.is_disconnect = True


_shared: dict[str, Engine] = {}
_shared_lock = threading.Lock()


def shared_engine(url: str) -> Engine:
    """One engine per database URL for the whole process: the dashboard's sessions, its job
    runner and its HTTP API all write through it (DuckDB allows one writing process; with
    PostgreSQL one pool per process is simply the economical choice)."""
    with _shared_lock:
        if url not in _shared:
            _shared[url] = open_engine(url)
        return _shared[url]


def explain(err: DBAPIError, where: Path | str) -> StorageError:
    """Turn a driver error into one sentence saying what is wrong and what to do."""
    text = str(err.orig)
    if "not a valid DuckDB database file" in text:
        return StorageError(
            f"{where} is not a DuckDB database, or it is damaged. Nothing was changed; "
            "move the file aside (or set TRENDLAB_DB_URL) and start again."
        )
    if "Could not set lock" in text:
        pid = re.search(r"PID (\d+)", text)
        holder = f"process {pid.group(1)}" if pid else "another process"
        return DatabaseLocked(
            f"{where} is in use by {holder}. DuckDB lets one process write a file at a "
            "time: stop that process (usually a running `trendlab serve`), use the dashboard, "
            "or queue the work through the server (`--via-server` where a command has it); "
            "commands that only read ask the server. A team shares PostgreSQL instead "
            "(TRENDLAB_DB_URL, docs/deploy.md).",
            int(pid.group(1)) if pid else None,
        )
    if "could not connect" in text.lower() or "connection refused" in text.lower():
        return StorageError(
            f"Cannot reach the database server for {_safe(where)}: {text.strip()} "
            "Check TRENDLAB_DB_URL and that PostgreSQL runs."
        )
    if "Permission denied" in text or "Read-only" in text:
        return StorageError(f"{where} cannot be written ({text.strip()}). Check its permissions.")
    return StorageError(f"The database {_safe(where)} could not be used: {text.strip()}")


def _safe(where: Path | str) -> str:
    """A database named in a message, without the password a URL may carry."""
    if isinstance(where, Path):
        return str(where)
    try:
        return make_url(where).render_as_string(hide_password=True)
    except Exception:  # not a URL: say it as given
        return str(where)


def init_schema(
    engine: Engine,
    *,
    target: int = SCHEMA_VERSION,
    migrations: dict[int, Migration] | None = None,
) -> int:
    """Create the schema, or migrate it to ``target``; refuse rather than lose data.

    Running it again on an up-to-date database changes nothing. Returns the version in force.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # servers and CLIs starting together: one at a time
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        tables = set(inspect(conn).get_table_names())
        if SchemaVersion.__tablename__ not in tables:
            ours = tables & set(Base.metadata.tables)
            if ours:
                raise StorageError(
                    f"The database has Trendlab tables ({', '.join(sorted(ours))}) but no schema "
                    "version, so it was not written by a released Trendlab. Nothing was changed; "
                    "use a new TRENDLAB_HOME or move the file aside."
                )
            Base.metadata.create_all(conn)
            conn.execute(SchemaVersion.__table__.insert().values(version=target))
            return target
        current = conn.scalar(select(SchemaVersion.version).order_by(SchemaVersion.version.desc()))
        if current is None:
            raise StorageError("The schema_version table is empty; the database is damaged.")
        if current > target:
            raise StorageError(
                f"The database was written by a newer Trendlab (schema {current}; this version "
                f"reads schema {target}). Upgrade Trendlab; nothing was changed."
            )
        for version in range(current, target):
            if version not in migrations:
                raise StorageError(
                    f"The database uses schema {current} and no migration leads from schema "
                    f"{version} to {version + 1}. Nothing was changed; export what you need "
                    "and start with a new TRENDLAB_HOME."
                )
            migrations[version](conn)
            conn.execute(SchemaVersion.__table__.insert().values(version=version + 1))
        Base.metadata.create_all(conn)
        return target


def schema_version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(select(SchemaVersion.version).order_by(SchemaVersion.version.desc()))
        )
