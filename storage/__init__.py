"""Persistence: the data home, the DuckDB schema and typed repository functions.

Imports neither streamlit nor torch; core/ does not import this package.
"""

from storage.data_home import DataHome, DataHomeError
from storage.db import SCHEMA_VERSION, StorageError, open_engine, shared_engine

__all__ = [
    "SCHEMA_VERSION",
    "DataHome",
    "DataHomeError",
    "StorageError",
    "open_engine",
    "shared_engine",
]
