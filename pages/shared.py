"""What every page needs: the data home, the database engine and the job manager, opened once
per process and shared with the job runner and the HTTP API."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from services import database
from services.jobs.manager import JobManager, start_job_manager

MAX_UPLOAD_MB = int(st.get_option("server.maxUploadSize"))  # .streamlit/config.toml


def said(error: BaseException) -> str:
    """An error as a page shows it: the server's paths written relative to its data home."""
    return database.DataHome.from_env().without_root(str(error))


def data_home() -> database.DataHome:
    """The data home from the environment, created if missing; stops the page on failure."""
    try:
        return database.data_home()
    except database.DataHomeError as err:
        st.error(said(err))
        st.stop()


def engine() -> Engine:
    """The server's engine (this process is the one that writes the database)."""
    try:
        return database.database(data_home())
    except database.StorageError as err:
        st.error(said(err))
        st.stop()


def jobs() -> JobManager:
    """The server's job manager (started with the server; see services.jobs.manager)."""
    engine()  # stops the page with the reason when the database cannot be opened
    return start_job_manager(data_home())
