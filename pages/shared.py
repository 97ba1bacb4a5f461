"""What every page needs: the data home and the database engine, opened once per process."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from services.jobs import JobManager, start_job_manager
from storage import DataHome, DataHomeError, StorageError, shared_engine

MAX_UPLOAD_MB = int(st.get_option("server.maxUploadSize"))  # .streamlit/config.toml


def _engine(url: str) -> Engine:
    return shared_engine(url)  # the same engine the job runner and the HTTP API use


def data_home() -> DataHome:
    """The data home from the environment, created if missing; stops the page on failure."""
    try:
        return DataHome.from_env().ensure()
    except DataHomeError as err:
        st.error(str(err))
        st.stop()


def engine() -> Engine:
    """The server's engine (this process is the one that writes the database)."""
    home = data_home()
    try:
        return _engine(home.database_url)
    except StorageError as err:
        st.error(str(err))
        st.stop()


def jobs() -> JobManager:
    """The server's job manager (started with the server; see services.jobs)."""
    home = data_home()
    engine()  # stops the page with the reason when the database cannot be opened
    return start_job_manager(home)
