"""`trendlab data ...`: build, import and inspect market datasets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from cli import download
from cli.common import JsonOption, ProgressPrinter, database, fail
from cli.remote import read
from core.config import ConfigError
from core.import_problems import ImportFailed
from core.market.config import DEFAULT_TICKERS, DataConfig
from core.market.importers import ImportOptions, import_market, parse_mapping
from core.market.sources import (
    DEMO_END,
    DEMO_SEED,
    DEMO_START,
    MarketData,
    bundled_config,
    bundled_data,
    synthetic_data,
)
from services import catalog
from services import facts as views
from services.catalog import StorageError
from services.datasets import (
    ContextCoverage,
    context_coverage,
    reused_sentence,
    store_market_dataset,
)
from services.progress import format_duration

app = typer.Typer(help="Build, import and inspect datasets.", no_args_is_help=True)
app.add_typer(download.app, name="download")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="DataConfig YAML (horizons, splits, ...).")
]
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


def _data_config(path: Path | None) -> DataConfig:
    try:
        return DataConfig.load_yaml(path, partial=True) if path else DataConfig()
    except ConfigError as err:
        raise fail(str(err)) from None


def _save(name: str, data: MarketData, config: DataConfig, description: str) -> None:
    tickers = data.prices["ticker"].nunique()
    typer.echo(
        f"Building features and labels: {len(data.prices):,} price rows of {tickers} "
        f"tickers, horizons {', '.join(f'{h}d' for h in config.horizons)}...",
        err=True,
    )
    started = time.perf_counter()
    with database() as (_, engine):
        try:
            dataset, reused = store_market_dataset(
                engine=engine, name=name, data=data, config=config, description=description
            )
        except ValueError as err:  # a recipe the data cannot fill
            raise fail(str(err)) from None
    typer.echo(f"Built and stored in {format_duration(time.perf_counter() - started)}.", err=True)
    if reused:
        typer.echo(reused_sentence(name, dataset.name))
    else:
        typer.echo(
            f"Stored dataset {dataset.name!r}: {dataset.row_count} rows, "
            f"{len(dataset.tickers)} tickers, {dataset.start_date} to {dataset.end_date}."
        )


@app.command("synthetic")
def data_synthetic(
    name: Annotated[str, typer.Argument(help="Name for the dataset.")],
    tickers: Annotated[str, typer.Option(help="Comma-separated tickers.")] = ",".join(
        DEFAULT_TICKERS
    ),
    start: Annotated[str, typer.Option(help="First simulated day.")] = DEMO_START,
    end: Annotated[str, typer.Option(help="Last simulated day.")] = DEMO_END,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same market.")] = DEMO_SEED,
    signal: Annotated[
        bool, typer.Option("--signal/--no-signal", help="Plant the context signal.")
    ] = True,
    config: ConfigOption = None,
) -> None:
    """Simulate a market with a planted context signal and store its dataset."""
    data_config = _data_config(config)
    names = [t.strip() for t in tickers.split(",") if t.strip()]
    if not names:
        raise fail("--tickers: give at least one ticker.")
    try:
        data = synthetic_data(
            names, start, end, seed=seed, signal=signal, horizons=data_config.horizons
        )
    except ValueError as err:
        raise fail(f"Cannot simulate: {err}") from None
    signal_text = "with" if signal else "without"
    _save(name, data, data_config, f"synthetic, seed {seed}, {signal_text} context signal")


@app.command("bundled")
def data_bundled(
    name: Annotated[str, typer.Argument(help="Name for the dataset.")],
    config: ConfigOption = None,
) -> None:
    """Store the S&P 500 / NASDAQ dataset with macro context shipped by the arch package."""
    data_config = bundled_config(_data_config(config))
    _save(name, bundled_data(), data_config, "arch package: S&P 500 and NASDAQ with macro")


@app.command("import")
def data_import(
    name: Annotated[str, typer.Argument(help="Name for the dataset.")],
    prices: Annotated[
        list[Path] | None,
        typer.Option(help="OHLCV CSV/Parquet; repeat for one file per ticker."),
    ] = None,
    more: MoreFiles = None,
    news: Annotated[Path | None, typer.Option(help="Headlines CSV.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy events CSV.")] = None,
    macro: Annotated[Path | None, typer.Option(help="Macro series CSV.")] = None,
    mapping: Annotated[
        str, typer.Option("--map", help="Column mapping, e.g. date=Date,close=Close.")
    ] = "",
    max_gap_days: Annotated[int, typer.Option(help="Warn about longer date gaps.")] = 10,
    bundled_macro: Annotated[
        bool,
        typer.Option(
            "--bundled-macro/--no-bundled-macro",
            help="Without --macro, join the macro series bundled with arch where dates overlap.",
        ),
    ] = True,
    strict: StrictOption = False,
    config: ConfigOption = None,
) -> None:
    """Validate and import your own prices (and optional news, policy and macro files); rows
    and tickers the build cannot use (a missing, zero or negative price, high below low, a
    repeated date, too short a history) are left out and listed, --strict refuses them."""
    data_config = _data_config(config)
    try:
        columns = parse_mapping(mapping)
    except ValueError as err:
        raise fail(f"--map: {err}") from None
    paths = _price_paths(prices, more)
    options = ImportOptions(
        max_gap_days=max_gap_days, horizons=tuple(data_config.horizons), strict=strict
    )
    files = {"news": news, "policy": policy, "macro": macro}
    data = _read(paths, files, columns, options, bundled_macro=bundled_macro)
    for note in data.notes.get("context", []):
        typer.echo(note)
    _print_left_out(data, err=False)
    _save(name, data, data_config, f"import of {_file_names(paths)}")


def _price_paths(prices: list[Path] | None, more: list[Path] | None) -> list[Path]:
    """The price files of ``--prices`` and the arguments after it; at least one."""
    paths = [*(prices or []), *(more or [])]
    if not paths:
        raise fail("Give the price files: --prices FILE [FILE ...].")
    return paths


def _file_names(paths: list[Path], shown: int = 5) -> str:
    names = [p.name for p in paths]
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _print_left_out(data: MarketData, *, err: bool) -> None:
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


def _read(
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


@app.command("update")
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
    from services.dataset_updates import update_market_dataset

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
    data = _read(given, files, columns, options, bundled_macro=False)
    _print_left_out(data, err=True)
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
    from services.rolling import retrain_here, serving

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


@app.command("list")
def data_list(as_json: JsonOption = False) -> None:
    """List stored datasets (works while a server holds the database)."""
    facts = read(lambda _, engine: views.datasets(engine=engine), "/datasets")
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
    elif not facts:
        typer.echo("No datasets yet; try `trendlab data synthetic demo`.")
    for item in [] if as_json else facts:
        typer.echo(
            f"{item['name']:20} {item['kind']:10} {item['rows']:>9} rows  "
            f"{item['start']} .. {item['end']}  {len(item['tickers'])} tickers"
        )


@app.command("show")
def data_show(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    as_json: JsonOption = False,
) -> None:
    """Show one dataset: source, tickers, dates, features, recipe and context coverage."""
    with database() as (_, engine):
        dataset = catalog.dataset(engine=engine, name=name)
        if dataset is None:
            known = ", ".join(d.name for d in catalog.datasets(engine=engine)) or "none yet"
            raise fail(f"No dataset named {name!r}; known datasets: {known}.")
        coverage = None if dataset.recommender else _coverage(engine, name)
    facts = {
        **views.dataset_facts(dataset),
        "features": len(dataset.features),
        "content_hash": dataset.content_hash,
        "recipe": dataset.recipe,
    }
    if coverage is not None:
        facts["coverage"] = coverage if isinstance(coverage, str) else coverage.to_dict()
    if as_json:
        typer.echo(json.dumps(facts, indent=2, default=str))
        return
    for key, value in facts.items():
        if key != "coverage" or isinstance(value, str):
            text = json.dumps(value, default=str) if isinstance(value, dict | list) else value
            typer.echo(f"{key:13} {text}")
    if isinstance(coverage, ContextCoverage):
        _print_coverage(coverage)


def _coverage(engine, name: str) -> ContextCoverage | str:
    """The dataset's context coverage, or why it cannot be computed (rows missing)."""
    try:
        return context_coverage(engine=engine, name=name)
    except StorageError as err:
        return f"unknown: {err}"


def _print_coverage(coverage: ContextCoverage) -> None:
    """Share of rows with each context group observed: overall, per ticker, per year."""
    typer.echo("coverage      share of rows with each context group observed (mask 1)")
    typer.echo(f"  {'':12}" + "".join(f"{group:>8}" for group in coverage.overall))
    rows = [("all", coverage.overall), *coverage.by_ticker.items(), *coverage.by_year.items()]
    for label, shares in rows:
        typer.echo(f"  {label!s:12}" + "".join(f"{share:8.2f}" for share in shares.values()))
