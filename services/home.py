"""The data home and its database engine, one engine per database for the whole process: the
pages, the job runner and the HTTP API all write through it (DuckDB allows one writer)."""

from __future__ import annotations

from sqlalchemy import Engine

from storage import DataHome, DataHomeError, StorageError, shared_engine

__all__ = ["DataHome", "DataHomeError", "StorageError", "data_home", "database"]


def data_home() -> DataHome:
    """The data home named by the environment, created if missing (DataHomeError if not)."""
    return DataHome.from_env().ensure()


def database(home: DataHome) -> Engine:
    """The process's engine for the home's database (StorageError when it cannot open)."""
    return shared_engine(home.database_url)
