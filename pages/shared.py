"""What every page needs: the data home and the database engine, opened once per process."""

from __future__ import annotations

import os

import streamlit as st
from sqlalchemy import Engine

from storage import DataHome, DataHomeError, StorageError, shared_engine
from storage.jobs import JobManager, JobRunner

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


@st.cache_resource(show_spinner=False)
def _jobs(url: str, root: str) -> JobManager:
    """One job manager per server process. On creation it marks jobs a previous server left
    running as interrupted, then (unless TRENDLAB_JOB_RUNNER=0) starts the thread that
    launches queued jobs and ingests their progress."""
    manager = JobManager(
        engine=_engine(url),
        home=DataHome.from_env().ensure(),
        max_running=int(os.environ.get("TRENDLAB_MAX_JOBS", "1")),
    )
    manager.recover()
    if os.environ.get("TRENDLAB_JOB_RUNNER", "1") != "0":
        JobRunner(manager).start()
    return manager


def jobs() -> JobManager:
    home = data_home()
    engine()  # stops the page with the reason when the database cannot be opened
    return _jobs(home.database_url, str(home.root))
