"""The data home: create it, say what it holds, serve the dashboard and API over it."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from importlib.machinery import PathFinder
from typing import Annotated

import typer

from cli.common import JsonOption, database, fail
from cli.remote import read
from services import catalog
from services.access import trusted_proxies
from storage.db import schema_version


def server_script() -> str:
    """The file `streamlit run` serves (app.py's pages + /api): api.server's, wherever the
    package is installed. Found, not imported: looking up ``api.server`` itself would run
    the package's __init__ (FastAPI, torch: seconds) in this process, which then execs."""
    package = importlib.util.find_spec("api")
    found = package and PathFinder.find_spec("api.server", package.submodule_search_locations)
    if not (found and found.origin):
        raise fail("The api package (api/server.py) is not installed.")
    return found.origin


def init() -> None:
    """Create the data home and the database (harmless when they exist)."""
    with database() as (home, engine):
        typer.echo(f"Data home {home.root}, database schema {schema_version(engine)}.")


def info(as_json: JsonOption = False) -> None:
    """Where the data home and database are, and what the database holds (works while a
    server holds the database)."""
    facts = read(lambda home, engine: catalog.info(home=home, engine=engine), "/info")
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
    else:
        for key, value in facts.items():
            typer.echo(f"{key:15} {value}")


def serve(
    port: Annotated[int, typer.Option(help="Port for pages and API.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "localhost",
    demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Store the demo dataset if none exists.")
    ] = True,
    demo_jobs: Annotated[
        bool,
        typer.Option(
            "--demo-jobs/--no-demo-jobs",
            envvar="TRENDLAB_DEMO_JOBS",
            help="With the demo data of a first start, queue one quick training per kind.",
        ),
    ] = True,
) -> None:
    """Start the dashboard and the HTTP API (/api); this process then owns the database."""
    if os.environ.get("TRENDLAB_REQUIRE_AUTH", "").lower() in ("1", "true", "yes"):
        missing = [n for n in ("TRENDLAB_PASSWORD", "TRENDLAB_API_TOKEN") if not os.environ.get(n)]
        if missing:
            raise fail(
                f"TRENDLAB_REQUIRE_AUTH is set (as in the container) but {', '.join(missing)} "
                "is not: set it, e.g. docker run -e TRENDLAB_PASSWORD=... -e "
                "TRENDLAB_API_TOKEN=..., so strangers cannot use this deployment."
            )
    # uvicorn trusts X-Forwarded-For from loopback unless told otherwise: only the listed
    # proxies may name the client (the lockouts key on that address).
    try:
        os.environ["FORWARDED_ALLOW_IPS"] = trusted_proxies()
    except ValueError as error:
        raise fail(str(error)) from None
    # Leaving the block disposes the engine: the file is free before the server opens it.
    with database() as (home, engine):
        if demo:
            from services.demo import queue_demo_training, store_demo_datasets

            stored = store_demo_datasets(engine=engine)
            for name in stored:
                typer.echo(f"Stored the synthetic demo dataset {name!r}.")
            if demo_jobs:
                for job_id in queue_demo_training(engine=engine, datasets=stored):
                    typer.echo(f"Queued demo training job {job_id}.")
    # Where this server answers (exec keeps the PID): the CLI asks it while it holds the file.
    local = "127.0.0.1" if address in ("0.0.0.0", "localhost", "") else address
    home.server_file.write_text(
        json.dumps({"url": f"http://{local}:{port}", "pid": os.getpid(), "address": address})
    )
    command = [
        sys.executable,
        "-c",
        "import cli; cli.run_streamlit()",
        "run",
        server_script(),
        f"--server.port={port}",
        f"--server.address={address}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
    ]
    os.execv(sys.executable, command)
