"""Persistence: the data home, the DuckDB schema and typed repository functions.

Imports neither streamlit nor torch; core/ does not import this package.
"""

from storage.db import SCHEMA_VERSION, StorageError, open_engine, shared_engine
from storage.home import DataHome, DataHomeError

__all__ = [
    "SCHEMA_VERSION",
    "DataHome",
    "DataHomeError",
    "StorageError",
    "open_engine",
    "shared_engine",
]
