"""The server `trendlab serve` and `make run` start: the dashboard (app.py) and the HTTP API
(api.py, under /api) on one port, one process, one database engine."""

import streamlit as st
from starlette.routing import Mount

from api import create_api

app = st.App("app.py", routes=[Mount("/api", app=create_api())])
