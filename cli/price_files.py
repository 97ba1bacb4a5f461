"""The price files a `trendlab data` command reads: its arguments, the read with its
warnings, and what the import left out, said per file (shared by import and update)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import fail
from core.import_problems import ImportFailed
from core.market.importers import ImportOptions, import_market
from core.market.sources import (
    MarketData,
)

MoreFiles = Annotated[
    list[Path] | None,
    typer.Argument(
        help="More price files, so a shell glob works: --prices prices/*.csv.",
        show_default=False,
    ),
]
StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Refuse rows with a missing, zero or negative price or high below low, "
        "repeated (date, ticker) rows and tickers with too little history, instead of "
        "leaving them out and listing them.",
    ),
]


def price_paths(prices: list[Path] | None, more: list[Path] | None) -> list[Path]:
    """The price files of ``--prices`` and the arguments after it; at least one."""
    paths = [*(prices or []), *(more or [])]
    if not paths:
        raise fail("Give the price files: --prices FILE [FILE ...].")
    return paths


def file_names(paths: list[Path], shown: int = 5) -> str:
    names = [p.name for p in paths]
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def print_left_out(data: MarketData, *, err: bool) -> None:
    """What the price import left out, one line per file, under a line that sums it up."""
    left_out = data.notes.get("left_out")
    if not left_out:
        return
    parts = []
    if left_out.row_count:
        parts.append(f"{left_out.row_count:,} row{'s' * (left_out.row_count != 1)}")
    if left_out.tickers:
        named = ", ".join(left.ticker for left in left_out.tickers)
        parts.append(
            f"{len(left_out.tickers)} ticker{'s' * (len(left_out.tickers) != 1)} ({named})"
        )
    kept = data.prices["ticker"].nunique()
    typer.echo(
        f"Left out {' and '.join(parts)}; {kept} ticker{'s' * (kept != 1)} imported "
        "(--strict refuses instead). By file:",
        err=err,
    )
    for line in left_out.describe():
        typer.echo(f"  {line}", err=err)


def read_files(
    prices: list[Path],
    files: dict[str, Path | None],
    mapping: dict[str, str],
    options: ImportOptions,
    *,
    bundled_macro: bool,
) -> MarketData:
    """The files read and checked by ``import_market`` (its problems end the command), with
    its warnings printed."""
    try:
        data, warnings = import_market(
            prices, **files, mapping=mapping, options=options, bundled_macro=bundled_macro
        )
    except ImportFailed as err:
        raise fail(str(err)) from None
    for warning in warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    return data
