"""The `trendlab` command line: serve the dashboard, inspect the data home, check configs.

One module per command group; this one builds the app from them and holds the two entry
points called from outside: ``main`` (the console script) and ``run_streamlit`` (what
``trendlab serve`` execs).
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from cli import config, data, evaluate, forecast, recsys, runs, serve, train
from cli.common import no_space_sentence
from cli.sweep import sweep as sweep_command
from services.jobs.run_owners import STOPS
from storage.db import disk_full

app = typer.Typer(
    help="Trendlab: train, compare and serve market-trend models.", no_args_is_help=True
)
# Typer lists commands in the order they are registered, so this is `trendlab --help`'s order.
for command in (
    serve.init,
    serve.info,
    serve.serve,
    train.train,
    evaluate.evaluate,
    evaluate.ensemble,
    evaluate.predict,
    forecast.forecast,
    forecast.follow,
    forecast.retrain,
):
    app.command()(command)
app.command("models")(train.models_list)
app.command("sweep")(sweep_command)
app.add_typer(config.app, name="config")
app.add_typer(data.app, name="data")
app.add_typer(runs.app, name="runs")
app.add_typer(evaluate.export_app, name="export")
app.add_typer(recsys.app, name="recsys")


def run_streamlit() -> None:
    """``streamlit <args>`` with Streamlit's old pages/ discovery switched off first.

    app.py lists its pages with st.navigation, and Streamlit ignores the pages/ folder only
    once some session has run st.navigation; until then a fresh server's first visitor on a
    deep link (/train) would get pages/train.py run on its own, without app.py (no menu, no
    page config). Setting the flag Streamlit itself sets makes every session go through
    app.py from the start.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web.cli import main as streamlit_main

    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit_main()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so a training run is marked cancelled (as for
    Ctrl-C) instead of dying with its run left 'running'."""


def _terminated(signum: int, frame: object) -> None:
    STOPS.append(signum)
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


def _interrupted(signum: int, frame: object) -> None:
    STOPS.append(signum)
    raise KeyboardInterrupt


def main() -> None:
    """Console entry point: run the command, then leave without interpreter teardown.

    duckdb's nanobind bindings print pages of "leaked instance" warnings at a normal
    interpreter exit; the command's work is complete and flushed by then, so skip it.
    SIGTERM stops the command like Ctrl-C: its run is recorded as cancelled. A full disk is
    one sentence, wherever the command was writing.
    """
    signal.signal(signal.SIGTERM, _terminated)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when ignored
        signal.signal(signal.SIGINT, _interrupted)
    try:
        app()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except KeyboardInterrupt as stopped:
        sys.stderr.write(f"Stopped ({stopped or 'interrupted'}).\n")
        code = 130
    except Exception as error:  # a command's own failures are one line already
        if not disk_full(error):
            raise
        sys.stderr.write(no_space_sentence() + "\n")
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
