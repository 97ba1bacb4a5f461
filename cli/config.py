"""`trendlab config ...`: show, document and check the YAML configs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import fail
from core.config import Config, ConfigError, field_docs
from services.config_index import CONFIG_CLASSES, config_reference

app = typer.Typer(help="Show and check YAML configs.", no_args_is_help=True)


def _config_class(name: str) -> type[Config]:
    cls = CONFIG_CLASSES.get(name)
    if cls is None:
        raise fail(f"Unknown config {name!r}; known: {', '.join(CONFIG_CLASSES)}.")
    return cls


@app.command("show")
def config_show(
    name: Annotated[str, typer.Argument(help="Config class name.")] = "ConfigManager",
    docs: Annotated[bool, typer.Option(help="List each field's meaning instead.")] = False,
) -> None:
    """Print a config's defaults as YAML."""
    cls = _config_class(name)
    if docs:
        for field_name, text in field_docs(cls).items():
            typer.echo(f"{field_name}: {text}")
    else:
        typer.echo(cls().to_yaml(), nl=False)


@app.command("docs")
def config_docs() -> None:
    """Print the Markdown reference of every config (docs/config.md)."""
    typer.echo(config_reference(), nl=False)


@app.command("validate")
def config_validate(
    path: Annotated[Path, typer.Argument(help="YAML file to check.")],
    name: Annotated[str, typer.Option("--kind", help="Config class name.")] = "ConfigManager",
    partial: Annotated[bool, typer.Option(help="Allow missing keys (overrides).")] = False,
) -> None:
    """Check a YAML config; print the first problem, naming the field."""
    cls = _config_class(name)
    try:
        cls.load_yaml(path, partial=partial)
    except ConfigError as err:
        raise fail(str(err)) from None
    typer.echo(f"{path}: valid {name}.")
