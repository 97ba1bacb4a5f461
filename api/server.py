"""The server `trendlab serve` and `make run` start: the dashboard (app.py) and the HTTP API
(api, under /api) on one port, one process, one database engine, one job manager. With a
password set, Streamlit's media, upload and metrics routes answer signed-in browsers only
(api/sign_ins.py).

`streamlit run` is given this file's path (cli/serve.py finds it with importlib), so here it
is imported as the top-level module ``server``; tests import it as ``api.server``."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import Mount

from api.app import create_api
from api.sign_ins import SignInGate
from services.database import data_home, database
from services.jobs.manager import start_job_manager
from services.recsys.serving import warm_serving

# The dashboard's script, beside this package. Absolute: under `streamlit run` a relative
# path would be resolved against this file's folder (api/), not the repository's root.
DASHBOARD = Path(__file__).resolve().parents[1] / "app.py"


@asynccontextmanager
async def lifespan(app: st.App) -> AsyncIterator[None]:
    """At start-up, before any page runs: recover jobs a dead server left and start the
    queue (a restarted server must not wait for a visitor to resume its work). The data home
    is checked here, once; requests only read that it is still there. The recommender the
    API serves is built now, not by the first twenty requests at once.

    Then everything loaded so far (torch, pandas, Streamlit: some 400,000 objects) leaves the
    garbage collector's view: none of it is garbage, and a full collection that walks it
    holds the GIL for about 250 ms, which every request in flight waits out (the load
    test's p99)."""
    home = data_home()
    start_job_manager(home)
    warm_serving(engine=database(home), home=home)
    gc.freeze()
    yield


app = st.App(
    str(DASHBOARD),
    routes=[Mount("/api", app=create_api())],
    middleware=[Middleware(SignInGate)],
    lifespan=lifespan,
)
