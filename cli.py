"""The `trendlab` command line: serve the dashboard, inspect the data home, check configs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from core.config import CONFIG_CLASSES, ConfigError, config_reference, field_docs
from storage import DataHome, DataHomeError, StorageError, open_engine
from storage.db import schema_version
from storage.repository import count_rows, session_scope

APP_SCRIPT = Path(__file__).resolve().parent / "app.py"

app = typer.Typer(
    help="Trendlab: train, compare and serve market-trend models.", no_args_is_help=True
)
config_app = typer.Typer(help="Show and check YAML configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _open_home() -> tuple[DataHome, Engine]:
    try:
        home = DataHome.from_env().ensure()
        return home, open_engine(home.database_url)
    except (DataHomeError, StorageError) as err:
        raise _fail(str(err)) from None


@app.command()
def init() -> None:
    """Create the data home and the database (harmless when they exist)."""
    home, engine = _open_home()
    typer.echo(f"Data home {home.root}, database schema {schema_version(engine)}.")
    engine.dispose()


@app.command()
def info(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Where the data home and database are, and what the database holds."""
    home, engine = _open_home()
    with session_scope(engine) as session:
        counts = count_rows(session=session)
    facts = {
        "data_home": str(home.root),
        "database_url": home.database_url,
        "schema_version": schema_version(engine),
        **counts,
    }
    engine.dispose()
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
    else:
        for key, value in facts.items():
            typer.echo(f"{key:15} {value}")


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port for pages and API.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "localhost",
) -> None:
    """Start the dashboard; this process then owns the database."""
    _, engine = _open_home()
    engine.dispose()  # release the file before the server opens it
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        f"--server.port={port}",
        f"--server.address={address}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
    ]
    os.execv(sys.executable, command)


@config_app.command("show")
def config_show(
    name: Annotated[str, typer.Argument(help="Config class name.")] = "ConfigManager",
    docs: Annotated[bool, typer.Option(help="List each field's meaning instead.")] = False,
) -> None:
    """Print a config's defaults as YAML."""
    cls = CONFIG_CLASSES.get(name)
    if cls is None:
        raise _fail(f"Unknown config {name!r}; known: {', '.join(CONFIG_CLASSES)}.")
    if docs:
        for field_name, text in field_docs(cls).items():
            typer.echo(f"{field_name}: {text}")
    else:
        typer.echo(cls().to_yaml(), nl=False)


@config_app.command("docs")
def config_docs() -> None:
    """Print the Markdown reference of every config (docs/config.md)."""
    typer.echo(config_reference(), nl=False)


@config_app.command("validate")
def config_validate(
    path: Annotated[Path, typer.Argument(help="YAML file to check.")],
    name: Annotated[str, typer.Option("--kind", help="Config class name.")] = "ConfigManager",
    partial: Annotated[bool, typer.Option(help="Allow missing keys (overrides).")] = False,
) -> None:
    """Check a YAML config; print the first problem, naming the field."""
    cls = CONFIG_CLASSES.get(name)
    if cls is None:
        raise _fail(f"Unknown config {name!r}; known: {', '.join(CONFIG_CLASSES)}.")
    try:
        cls.load_yaml(path, partial=partial)
    except ConfigError as err:
        raise _fail(str(err)) from None
    typer.echo(f"{path}: valid {name}.")


if __name__ == "__main__":
    app()
