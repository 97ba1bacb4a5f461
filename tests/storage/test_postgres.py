"""PostgreSQL as the shared metadata database: processes that open, migrate and write it at the
same time, and a version-2 database migrated in place."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import text

from storage import open_engine
from storage.db import SCHEMA_VERSION, init_schema, schema_version
from storage.models import SchemaVersion
from storage.repository import count_metrics, count_rows, create_run, list_runs, session_scope
from tests.conftest import ROOT

pytestmark = pytest.mark.postgres


def _processes(code: str, url: str, count: int) -> list[subprocess.CompletedProcess]:
    """Start ``count`` interpreters running ``code`` (with URL and INDEX set) at once."""
    started = [
        subprocess.Popen(
            [sys.executable, "-c", f"URL = {url!r}\nINDEX = {i}\n" + textwrap.dedent(code)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    return [
        subprocess.CompletedProcess(p.args, p.wait(timeout=180), *p.communicate()) for p in started
    ]


def test_processes_opening_a_new_database_at_once_create_one_schema(postgres) -> None:
    url = postgres.fresh_database()
    done = _processes("from storage import open_engine\nopen_engine(URL).dispose()\n", url, 3)
    assert all(p.returncode == 0 for p in done), [p.stderr[-800:] for p in done]
    engine = open_engine(url)
    with session_scope(engine) as session:
        versions = session.scalars(text("SELECT version FROM schema_version")).all()
    assert versions == [SCHEMA_VERSION], "created once, versioned once"
    engine.dispose()


def test_several_processes_write_runs_and_metrics_at_once(postgres) -> None:
    """What DuckDB refuses (a second writing process) is the normal case here."""
    url = postgres.fresh_database()
    open_engine(url).dispose()
    code = """
        from storage import open_engine
        from storage.repository import MetricRow, append_metrics, create_run, session_scope
        engine = open_engine(URL)
        with session_scope(engine) as session:
            run_id = create_run(session=session, model_kind=f"p{INDEX}", config={}, seed=INDEX).id
        rows = [MetricRow(epoch=e, split="val", name="total", value=e) for e in range(10)]
        for _ in range(30):
            with session_scope(engine) as session:
                append_metrics(session=session, run_id=run_id, rows=rows)
        engine.dispose()
    """
    done = _processes(code, url, 4)
    assert all(p.returncode == 0 for p in done), [p.stderr[-800:] for p in done]
    engine = open_engine(url)
    with session_scope(engine) as session:
        runs = list_runs(session=session)
        assert sorted(r.model_kind for r in runs) == ["p0", "p1", "p2", "p3"]
        assert all(count_metrics(session=session, run_id=r.id) == 300 for r in runs)
    engine.dispose()


def test_a_version_2_database_is_migrated_in_place(postgres) -> None:
    url = postgres.fresh_database()
    engine = open_engine(url)
    with session_scope(engine) as session:
        create_run(session=session, model_kind="m", config={"a": 1}, seed=1)
    with engine.begin() as conn:  # what a version-2 database looked like
        conn.execute(text("DROP TABLE sweeps"))
        conn.execute(text("DROP SEQUENCE IF EXISTS sweeps_id_seq"))
        for column in ("owner", "sweep_id", "trial"):
            conn.execute(text(f"ALTER TABLE jobs DROP COLUMN {column}"))
        conn.execute(SchemaVersion.__table__.delete())
        conn.execute(SchemaVersion.__table__.insert().values(version=2))
    assert init_schema(engine) == SCHEMA_VERSION == schema_version(engine)
    with session_scope(engine) as session:
        assert count_rows(session=session)["runs"] == 1
    with engine.connect() as conn:
        columns = set(conn.execute(text("SELECT * FROM jobs LIMIT 0")).keys())
        assert {"owner", "sweep_id", "trial"} <= columns
        assert conn.execute(text("SELECT count(*) FROM sweeps")).scalar() == 0
    engine.dispose()


def test_a_wrong_password_or_host_is_one_sentence_without_the_password(postgres) -> None:
    from storage import StorageError

    url = f"postgresql+psycopg://trendlab:s3cret@127.0.0.1:{postgres.port + 1}/nothing"
    with pytest.raises(StorageError) as caught:
        open_engine(url)
    assert "s3cret" not in str(caught.value)
    assert "TRENDLAB_DB_URL" in str(caught.value)
