"""Where a dataset's rows are stored: tables in the DuckDB file, or Parquet files in the data
home when the metadata lives in PostgreSQL (see ``storage.feature_store``).

Table names are built from integer keys by the callers (``dataset_<id>``, ``..._users``), never
from user input, so they are safe in SQL and in file names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage.data_home import DataHome


def feature_files(session: Session) -> Path | None:
    """The folder of Parquet feature tables when the metadata database is not DuckDB (the
    data home's ``features/``), or None when tables live inside the DuckDB file."""
    if session.get_bind().dialect.name == "duckdb":
        return None
    return DataHome.from_env().features


def write_table(*, session: Session, table: str, frame: pd.DataFrame) -> None:
    """Store ``frame`` as ``table`` (a name built from an integer key): a DuckDB table in
    the session's transaction, or a Parquet file in the data home."""
    folder = feature_files(session)
    if folder is None:
        raw = session.connection().connection.driver_connection
        raw.register(f"incoming_{table}", frame)
        try:
            raw.execute(f"CREATE TABLE {table} AS SELECT * FROM incoming_{table}")
        finally:
            raw.unregister(f"incoming_{table}")
        return
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{table}.{os.getpid()}.parquet"
    with duckdb.connect() as local:  # the same types a DuckDB table would keep
        local.register("incoming", frame)
        target = str(partial).replace("'", "''")
        local.execute(f"COPY (SELECT * FROM incoming) TO '{target}' (FORMAT PARQUET)")
    os.replace(partial, folder / f"{table}.parquet")  # readers never see half a file


def read_table(
    *,
    session: Session,
    table: str,
    order: str,
    columns: Sequence[str] | None = None,
    single: bool = False,
) -> pd.DataFrame | None:
    """The rows of ``table`` sorted by ``order`` (column names), or None when missing;
    ``columns`` (names the code chose, with ``order``'s among them) reads only those;
    ``single`` reads float64 columns as float32 (half the memory: what training reads).

    The rows are read as stored and sorted here only when they are not in order already
    (tables are written sorted): an ORDER BY in DuckDB holds a second copy of the table
    while it sorts, 1 GB more at the peak for a 500-ticker x 10-year dataset."""
    folder = feature_files(session)
    if folder is None:
        raw = session.connection().connection.driver_connection
        exists = raw.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()[0]
        if not exists:
            return None
        stored = raw.execute(f"SELECT * FROM {table} LIMIT 0").df()
        frame = raw.execute(f"SELECT {_listed(columns, stored, single)} FROM {table}").df()
        if single:
            _release_cache(session.get_bind())
    else:
        path = folder / f"{table}.parquet"
        if not path.is_file():
            return None
        with duckdb.connect() as local:
            stored = local.execute("SELECT * FROM read_parquet(?) LIMIT 0", [str(path)]).df()
            query = f"SELECT {_listed(columns, stored, single)} FROM read_parquet(?)"
            frame = local.execute(query, [str(path)]).df()
    return _sorted(frame, [c.strip() for c in order.split(",")])


def _release_cache(engine: Engine) -> None:
    """Hand back the table blocks DuckDB keeps cached after a large read (its buffer
    manager holds them up to 80 % of the machine: 0.6 GB after reading a 500-ticker x
    10-year dataset, which training reads once). Lowering the limit evicts them; resetting
    it lets the cache grow again. On a connection of its own, so a failure cannot touch
    the reader's transaction."""
    try:
        with engine.connect() as connection:
            raw = connection.connection.driver_connection
            raw.execute("SET memory_limit = '64MB'")
            raw.execute("RESET memory_limit")
    except duckdb.Error:
        pass  # a cache that stays is only memory


def _listed(columns: Sequence[str] | None, stored: pd.DataFrame, single: bool) -> str:
    """The SELECT list: ``columns`` the table has (every one when None), quoted (they are
    names it stores), float64 ones cast to float32 when ``single``."""
    names = list(stored.columns) if columns is None else [c for c in columns if c in stored]
    if not single and columns is None:
        return "*"
    doubles = set(stored.select_dtypes("float64").columns) if single else set()
    return ", ".join(f'CAST("{c}" AS FLOAT) AS "{c}"' if c in doubles else f'"{c}"' for c in names)


def _sorted(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    position = frame[columns].sort_values(columns, kind="stable").index.to_numpy()
    if (position == np.arange(len(frame))).all():
        return frame
    return frame.take(position).reset_index(drop=True)


def drop_tables(*, session: Session, tables: list[str]) -> None:
    """Remove stored tables (missing ones are skipped)."""
    folder = feature_files(session)
    for table in tables:
        if folder is None:
            session.execute(text(f"DROP TABLE IF EXISTS {table}"))
        else:
            (folder / f"{table}.parquet").unlink(missing_ok=True)
