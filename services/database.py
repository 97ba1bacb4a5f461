"""The data home and its database engine, one engine per database for the whole process: the
pages, the job runner and the HTTP API all write through it (DuckDB allows one writer)."""

from __future__ import annotations

from sqlalchemy import Engine

from storage import DataHome, DataHomeError, StorageError, shared_engine
from storage.data_home import checked_home

__all__ = ["DataHome", "DataHomeError", "StorageError", "data_home", "database"]


def data_home() -> DataHome:
    """The data home named by the environment, created and checked once per process
    (DataHomeError if it cannot be written); what every request and page asks, so it writes
    nothing once the home has been checked."""
    return checked_home()


def database(home: DataHome) -> Engine:
    """The process's engine for the home's database (StorageError when it cannot open)."""
    return shared_engine(home.database_url)
