"""What every page needs: the data home and the database engine, opened once per process."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from storage import DataHome, DataHomeError, StorageError, open_engine


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return open_engine(url)


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
