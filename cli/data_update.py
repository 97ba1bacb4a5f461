"""`trendlab data update`: newer rows for a stored market dataset, from files or a download,
merged and rebuilt as its next version (and, with --retrain-years, the run serving it retrained)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOption, ProgressPrinter, database, fail
from cli.price_files import (
    MoreFiles,
    StrictOption,
    print_left_out,
    read_files,
)
from core.import_problems import ImportFailed
from core.market.importers import ImportOptions, parse_mapping
from services import catalog
from services.jobs.progress import format_duration

OVERLAP_DAYS = 7


def _download_newer(name: str, end: str | None) -> Path:
    """The dataset's tickers' prices after its last date, downloaded into the data home's
    cache as a prices CSV for the update to read."""
    import datetime as dt

    from core.market.connectors import DownloadFailed, DownloadsDisabled, download_prices

    try:
        last = dt.date.fromisoformat(end) if end else dt.date.today() - dt.timedelta(days=1)
    except ValueError:
        raise fail(f"--end {end!r} is not a date (YYYY-MM-DD).") from None
    with database() as (home, engine):
        info = catalog.dataset(engine=engine, name=name)
    if info is None or info.end_date is None:
        raise fail(f"No market dataset named {name!r}.")
    # A week of overlap: its repeated rows replace the stored ones (a bar that was still
    # moving when it was fetched) and show whether the adjusted closes were rebased.
    start = (info.end_date - dt.timedelta(days=OVERLAP_DAYS)).isoformat()
    last = last.isoformat()
    out = home.root / "cache" / "downloads" / f"update_{info.id}_{start}_{last}.csv"
    try:
        result = download_prices(
            list(info.tickers),
            start,
            last,
            out=out,
            cache_dir=out.parent,
            options=ImportOptions(appending=True),
        )
    except (DownloadsDisabled, DownloadFailed, ImportFailed) as err:
        raise fail(str(err)) from None
    for note in result.notes:
        typer.echo(note, err=True)
    return out


def data_update(
    name: Annotated[str, typer.Argument(help="The stored market dataset to update.")],
    prices: Annotated[
        list[Path] | None,
        typer.Option(help="Newer OHLCV CSV/Parquet; repeat for one file per ticker."),
    ] = None,
    more: MoreFiles = None,
    download: Annotated[
        bool,
        typer.Option(
            "--download",
            help="Instead of --prices: fetch the dataset's tickers' daily prices after its "
            "last date from Yahoo (off unless TRENDLAB_ALLOW_DOWNLOADS=1; cached).",
        ),
    ] = False,
    end: Annotated[
        str | None,
        typer.Option(
            help="With --download: the last day (default: yesterday, the last whole day)."
        ),
    ] = None,
    news: Annotated[Path | None, typer.Option(help="Newer headlines CSV.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Newer policy events CSV.")] = None,
    macro: Annotated[Path | None, typer.Option(help="Newer macro series CSV.")] = None,
    mapping: Annotated[
        str, typer.Option("--map", help="Column mapping, e.g. date=Date,close=Close.")
    ] = "",
    strict: StrictOption = False,
    new_tickers: Annotated[
        bool,
        typer.Option(
            "--new-tickers",
            help="Add tickers the dataset does not have; without it their rows are left "
            "out with a warning naming them.",
        ),
    ] = False,
    retrain_years: Annotated[
        float | None,
        typer.Option(
            help="Then retrain the run serving this dataset (set by `trendlab retrain`) on "
            "the latest this many years, promoting the new run only on evidence.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add newer rows to a stored market dataset: read as an import reads them, merged with
    what it was built from and rebuilt as its next version (the previous one stays as
    NAME@vK for the runs trained on it)."""
    from services.access import ReadOnlyError, ensure_writable
    from services.market.updates import update_market_dataset

    try:
        ensure_writable("updating datasets")  # before the files are read
        columns = parse_mapping(mapping)
    except ReadOnlyError as err:
        raise fail(str(err)) from None
    except ValueError as err:
        raise fail(f"--map: {err}") from None
    given = [*(prices or []), *(more or [])]
    if download == bool(given):
        raise fail("Give either --prices FILE or --download.")
    if download:
        given = [_download_newer(name, end)]
    files = {"news": news, "policy": policy, "macro": macro}
    options = ImportOptions(appending=True, strict=strict)
    data = read_files(given, files, columns, options, bundled_macro=False)
    print_left_out(data, err=True)
    typer.echo(f"Rebuilding {name!r} with {len(data.prices):,} newer price rows...", err=True)
    started = time.perf_counter()
    with database() as (home, engine):
        try:
            result = update_market_dataset(
                engine=engine, name=name, data=data, new_tickers=new_tickers
            )
            if retrain_years is not None:
                result["retrain"] = _retrain_serving(engine, home, name, retrain_years)
        except ValueError as err:
            raise fail(str(err)) from None
    _print_new_tickers(name, result)
    if as_json:
        dataset = result["dataset"]
        shown = {**result, "dataset": dataset.name, "dataset_id": dataset.id}
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    typer.echo(
        f"Updated {name!r} to version {result['version']} in "
        f"{format_duration(time.perf_counter() - started)}: {result['rows_before']:,} -> "
        f"{result['rows_after']:,} rows, through {result['end_after']} (was "
        f"{result['end_before']}); {result['replaced_price_rows']} stored price rows replaced. "
        f"The previous version is kept as {result['archived_as']!r}."
    )
    for ticker, ratio in result["rescaled"].items():
        typer.secho(
            f"rescaled: {ticker}'s stored prices x {ratio:.4f} to the update's price basis "
            "(its adjusted closes were recomputed, e.g. after a dividend or split)",
            err=True,
            fg=typer.colors.YELLOW,
        )
    for part, count in result["left_out"].items():
        typer.secho(
            f"left out: {count} {part.replace('_', ' ')} dated on or before the last stored one",
            err=True,
            fg=typer.colors.YELLOW,
        )
    if "retrain" in result:
        typer.echo(
            f"Retrained as run {result['retrain']['candidate']}: {result['retrain']['reason']}."
        )


def _print_new_tickers(name: str, result: dict) -> None:
    """Which tickers the dataset did not have, and whether the update added them."""
    if not result["new_tickers"]:
        return
    named = ", ".join(f"{t} ({n:,} rows)" for t, n in result["new_tickers"].items())
    if result["new_tickers_added"]:
        typer.echo(f"Added tickers {name!r} did not have: {named}.", err=True)
        return
    typer.secho(
        f"warning: left out tickers {name!r} does not have: {named}; add them with "
        "--new-tickers (a file without a ticker column is named after its file)",
        err=True,
        fg=typer.colors.YELLOW,
    )


def _retrain_serving(engine, home, name: str, years: float) -> dict:
    """The rolling retrain of the run serving ``name``, after its update."""
    from services.market.rolling import retrain_here, serving

    served = serving(engine=engine, dataset=name)["run_id"]
    if served is None:
        raise ValueError(
            f"The update is stored, but no run serves {name!r} yet to retrain: run "
            "`trendlab retrain RUN` once to name the one that does."
        )
    typer.echo(f"Retraining run {served} on the latest {years:g} years...", err=True)
    progress = ProgressPrinter(True, label="retrain")
    try:
        return retrain_here(
            engine=engine,
            home=home,
            serving_run_id=served,
            window_years=years,
            callbacks=[progress],
        )
    finally:
        progress.close()
