from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import Connection, select, text

from storage import DataHome, DataHomeError, StorageError, open_engine
from storage.db import SCHEMA_VERSION, init_schema, schema_version
from storage.models import SchemaVersion
from storage.repository import count_rows, create_run, get_run, session_scope


def _url(path: Path) -> str:
    return f"duckdb:///{path}"


def test_schema_creation_twice_is_harmless(tmp_path: Path) -> None:
    engine = open_engine(_url(tmp_path / "db.duckdb"))
    with session_scope(engine) as session:
        run_id = create_run(session=session, model_kind="m", config={}, seed=1).id
    assert init_schema(engine) == SCHEMA_VERSION
    assert init_schema(engine) == SCHEMA_VERSION
    with session_scope(engine) as session:
        assert get_run(session=session, run_id=run_id) is not None
        versions = session.scalars(select(SchemaVersion.version)).all()
    assert versions == [SCHEMA_VERSION]
    engine.dispose()


def test_reopening_a_file_keeps_its_rows(tmp_path: Path) -> None:
    engine = open_engine(_url(tmp_path / "db.duckdb"))
    with session_scope(engine) as session:
        create_run(session=session, model_kind="m", config={"lr": 0.1}, seed=3)
    engine.dispose()
    engine = open_engine(_url(tmp_path / "db.duckdb"))
    with session_scope(engine) as session:
        assert count_rows(session=session)["runs"] == 1
    engine.dispose()


def _set_version(engine, version: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM schema_version"))
        conn.execute(
            text("INSERT INTO schema_version (version, applied_at) VALUES (:v, now())"),
            {"v": version},
        )


def test_older_schema_without_migration_is_refused_and_untouched(tmp_path: Path) -> None:
    engine = open_engine(_url(tmp_path / "db.duckdb"))
    with session_scope(engine) as session:
        create_run(session=session, model_kind="m", config={}, seed=1)
    _set_version(engine, SCHEMA_VERSION - 1)
    with pytest.raises(StorageError, match="no migration leads from schema"):
        init_schema(engine, migrations={})
    with session_scope(engine) as session:
        assert count_rows(session=session)["runs"] == 1
    assert schema_version(engine) == SCHEMA_VERSION - 1
    engine.dispose()


def test_older_schema_is_migrated_in_place_keeping_data(tmp_path: Path) -> None:
    engine = open_engine(_url(tmp_path / "db.duckdb"))
    with session_scope(engine) as session:
        run_id = create_run(session=session, model_kind="m", config={"a": 1}, seed=1).id

    def add_notes(conn: Connection) -> None:
        conn.execute(text("ALTER TABLE runs ADD COLUMN notes VARCHAR DEFAULT 'migrated'"))

    version = init_schema(engine, target=SCHEMA_VERSION + 1, migrations={SCHEMA_VERSION: add_notes})
    assert version == SCHEMA_VERSION + 1
    assert schema_version(engine) == SCHEMA_VERSION + 1
    with engine.connect() as conn:
        row = conn.execute(text("SELECT id, notes FROM runs")).one()
    assert tuple(row) == (run_id, "migrated")
    engine.dispose()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    engine = open_engine(_url(tmp_path / "db.duckdb"))
    _set_version(engine, SCHEMA_VERSION + 5)
    engine.dispose()
    with pytest.raises(StorageError, match="newer Trendlab"):
        open_engine(_url(tmp_path / "db.duckdb"))


def test_unversioned_trendlab_tables_are_refused(tmp_path: Path) -> None:
    engine = open_engine(_url(tmp_path / "db.duckdb"))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE schema_version"))
    engine.dispose()
    with pytest.raises(StorageError, match="no schema version"):
        open_engine(_url(tmp_path / "db.duckdb"))


def test_corrupt_file_gives_one_clear_sentence_and_stays_untouched(tmp_path: Path) -> None:
    path = tmp_path / "trendlab.duckdb"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError) as caught:
        open_engine(_url(path))
    message = str(caught.value)
    assert str(path) in message
    assert "not a DuckDB database" in message
    assert path.read_bytes() == b"this is not a database" * 100


def test_file_locked_by_another_process_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "trendlab.duckdb"
    open_engine(_url(path)).dispose()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import duckdb, sys, time
                con = duckdb.connect({str(path)!r})
                print("locked", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StorageError) as caught:
            open_engine(_url(path))
        assert f"process {holder.pid}" in str(caught.value)
        assert "one process" in str(caught.value)
    finally:
        holder.communicate("\n", timeout=30)


def test_unwritable_data_home_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("TRENDLAB_HOME", str(blocker / "home"))
    with pytest.raises(DataHomeError, match="TRENDLAB_HOME"):
        DataHome.from_env().ensure()
    with pytest.raises(StorageError, match="writable"):
        open_engine(_url(blocker / "db" / "trendlab.duckdb"))


def test_db_url_env_overrides_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRENDLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRENDLAB_DB_URL", raising=False)
    home = DataHome.from_env()
    assert home.database_url == f"duckdb:///{tmp_path / 'home' / 'trendlab.duckdb'}"
    monkeypatch.setenv("TRENDLAB_DB_URL", "duckdb:////elsewhere/x.duckdb")
    assert DataHome.from_env().database_url == "duckdb:////elsewhere/x.duckdb"


def test_data_home_defaults_to_dot_trendlab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRENDLAB_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    home = DataHome.from_env().ensure()
    assert home.root == tmp_path / ".trendlab"
    assert all(p.is_dir() for p in (home.checkpoints, home.uploads, home.jobs, home.logs))


def test_a_version_1_database_gains_the_settings_table_and_keeps_its_rows(tmp_path: Path) -> None:
    from storage.repository import get_setting, set_setting

    engine = open_engine(_url(tmp_path / "db.duckdb"))
    with session_scope(engine) as session:
        create_run(session=session, model_kind="m", config={}, seed=1)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE settings"))
    _set_version(engine, 1)
    assert init_schema(engine) == SCHEMA_VERSION
    with session_scope(engine) as session:
        assert count_rows(session=session)["runs"] == 1
        set_setting(session=session, key="active_recommender", value={"run_id": 1})
    with session_scope(engine) as session:
        assert get_setting(session=session, key="active_recommender") == {"run_id": 1}
    engine.dispose()


def test_an_interrupt_is_recognised_through_the_wrappers_around_it() -> None:
    """A Ctrl-C that lands while DuckDB runs a statement comes back as DuckDB's
    InterruptException wrapped by SQLAlchemy: still a stop, not a failure."""
    import duckdb
    from sqlalchemy.exc import OperationalError

    from storage.db import interrupted

    wrapped = OperationalError("INSERT ...", {}, duckdb.InterruptException("Interrupted!"))
    assert interrupted(wrapped) and interrupted(KeyboardInterrupt())
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as stop:
            raise RuntimeError("while writing a metric") from stop
    except RuntimeError as error:
        assert interrupted(error)
    assert not interrupted(OperationalError("INSERT ...", {}, duckdb.IOException("disk")))
    assert not interrupted(ValueError("a real failure"))


def test_a_version_3_database_gains_the_forecasts_table_and_keeps_its_rows(tmp_path: Path) -> None:
    import datetime as dt

    from storage.forecasts import list_forecasts, replace_forecasts

    engine = open_engine(_url(tmp_path / "db.duckdb"))
    with session_scope(engine) as session:
        create_run(session=session, model_kind="m", config={}, seed=1)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE forecasts"))
    _set_version(engine, 3)
    assert init_schema(engine) == SCHEMA_VERSION
    row = {
        "ticker": "AAA",
        "horizon": 7,
        "target_date": dt.date(2024, 1, 9),
        "score": 0.1,
        "predicted_class": "up",
        "probabilities": {"up": 0.6},
        "band_low": -0.2,
        "band_high": 0.3,
    }
    with session_scope(engine) as session:
        assert count_rows(session=session)["runs"] == 1
        stored = replace_forecasts(
            session=session,
            run_id=1,
            dataset_id=1,
            dataset_hash="h",
            as_of=dt.date(2024, 1, 2),
            rows=[row],
        )
    with session_scope(engine) as session:
        assert stored == 1 and [f.ticker for f in list_forecasts(session=session, run_id=1)] == [
            "AAA"
        ]
    engine.dispose()


def test_a_version_4_database_gains_run_names_and_tags_and_keeps_its_rows(tmp_path: Path) -> None:
    from storage.repository import get_run, label_run

    engine = open_engine(_url(tmp_path / "db.duckdb"))
    with session_scope(engine) as session:
        create_run(session=session, model_kind="m", config={"a": 1}, seed=1)
    with engine.begin() as conn:  # DuckDB alters no table that an index depends on
        for index in ("ix_runs_dataset_id", "ix_runs_parent_run_id"):
            conn.execute(text(f"DROP INDEX {index}"))
        conn.execute(text("ALTER TABLE runs DROP COLUMN name"))
        conn.execute(text("ALTER TABLE runs DROP COLUMN tags"))
    _set_version(engine, 4)
    assert init_schema(engine) == SCHEMA_VERSION
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=1)
        assert run.config == {"a": 1} and run.name is None and not run.tags
        label_run(session=session, run_id=1, name="baseline", tags=["b", "a", "b"])
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=1)
        assert run.name == "baseline" and run.tags == ["a", "b"]
    engine.dispose()


def test_a_version_5_database_gains_job_requests_and_keeps_its_jobs(tmp_path: Path) -> None:
    """Issue 40: what a job is asked to do (its device) has its own column; it sat in the
    progress, which the worker's first report replaced."""
    from storage.models import JobStatus
    from storage.repository import create_job, get_job, update_job

    engine = open_engine(_url(tmp_path / "db.duckdb"))
    with session_scope(engine) as session:
        run_id = create_run(session=session, model_kind="m", config={"a": 1}, seed=1).id
        job_id = create_job(session=session, kind="train", run_id=run_id).id
        update_job(session=session, job_id=job_id, status=JobStatus.RUNNING, progress={"epoch": 3})
        waiting = create_job(session=session, kind="walk_forward", run_id=run_id).id
        update_job(session=session, job_id=waiting, progress={"folds": 5})  # as v5 queued it
    with engine.begin() as conn:  # DuckDB alters no table that an index depends on
        conn.execute(text("DROP INDEX ix_jobs_run_id"))
        conn.execute(text("ALTER TABLE jobs DROP COLUMN request"))
    _set_version(engine, 5)
    assert init_schema(engine) == SCHEMA_VERSION
    with session_scope(engine) as session:
        old = get_job(session=session, job_id=job_id)
        assert old.progress == {"epoch": 3} and old.request is None, "a report, not an ask"
        assert get_job(session=session, job_id=waiting).request == {"folds": 5}
        new = create_job(session=session, kind="train", run_id=run_id, request={"device": "cpu"})
        update_job(session=session, job_id=new.id, progress={"epoch": 1})
    with session_scope(engine) as session:
        assert get_job(session=session, job_id=new.id).request == {"device": "cpu"}
    engine.dispose()


NO_SPACE = 'Could not write file "/data/trendlab.duckdb": No space left on device'


def test_a_full_disk_is_recognised_through_the_wrappers_around_it() -> None:
    """Issue 41, item 7: an OSError ENOSPC, or DuckDB's IOException and FatalException saying
    so inside SQLAlchemy's wrappers."""
    import errno

    import duckdb
    from sqlalchemy.exc import DatabaseError, OperationalError

    from storage.db import disk_full

    fatal = duckdb.FatalException(f"FATAL Error: Failed to create checkpoint: {NO_SPACE}")
    assert disk_full(DatabaseError("COMMIT", {}, fatal))
    assert disk_full(
        OperationalError("INSERT ...", {}, duckdb.IOException(f"IO Error: {NO_SPACE}"))
    )
    assert disk_full(OSError(errno.ENOSPC, "No space left on device", "/data/runs/x.pt"))
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as full:
            raise RuntimeError("while saving a checkpoint") from full
    except RuntimeError as error:
        assert disk_full(error)
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(OperationalError("INSERT ...", {}, duckdb.IOException("disk")))


def test_a_fatal_duckdb_error_drops_the_connection_instead_of_rolling_it_back(
    tmp_path: Path,
) -> None:
    """After DuckDB's FatalException the database refuses every statement; the pooled
    connection's rollback failed again and SQLAlchemy logged a page of traceback under the
    command's one sentence. The connection is now dropped as if disconnected."""
    import duckdb
    from sqlalchemy import event
    from sqlalchemy.exc import DBAPIError

    engine = open_engine(_url(tmp_path / "db.duckdb"))
    fatal = duckdb.FatalException(f"FATAL Error: Failed to create checkpoint: {NO_SPACE}")

    def fail(conn, cursor, statement, *args) -> None:
        if statement.startswith("SELECT 42"):
            raise fatal

    event.listen(engine, "before_cursor_execute", fail)
    with engine.connect() as conn:
        with pytest.raises(DBAPIError):
            conn.execute(text("SELECT 42"))
        assert conn.invalidated, "dropped, not rolled back into the pool"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1, "a fresh connection is opened"
    engine.dispose()
