"""`trendlab data ...`: build, import and inspect market datasets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from cli import download
from cli.common import JsonOption, database, fail
from cli.data_update import data_update
from cli.price_files import (
    MoreFiles,
    StrictOption,
    file_names,
    price_paths,
    print_left_out,
    read_files,
)
from cli.remote import read
from core.config import ConfigError
from core.market.config import DEFAULT_TICKERS, DataConfig
from core.market.importers import ImportOptions, parse_mapping
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
from services.catalog import StorageError
from services.datasets import (
    ContextCoverage,
    context_coverage,
    reused_sentence,
    store_market_dataset,
)
from services.jobs.progress import format_duration

app = typer.Typer(help="Build, import and inspect datasets.", no_args_is_help=True)
app.add_typer(download.app, name="download")
app.command("update")(data_update)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="DataConfig YAML (horizons, splits, ...).")
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
    paths = price_paths(prices, more)
    options = ImportOptions(
        max_gap_days=max_gap_days, horizons=tuple(data_config.horizons), strict=strict
    )
    files = {"news": news, "policy": policy, "macro": macro}
    data = read_files(paths, files, columns, options, bundled_macro=bundled_macro)
    for note in data.notes.get("context", []):
        typer.echo(note)
    print_left_out(data, err=False)
    _save(name, data, data_config, f"import of {file_names(paths)}")


@app.command("list")
def data_list(as_json: JsonOption = False) -> None:
    """List stored datasets (works while a server holds the database)."""
    facts = read(
        lambda _, engine: [d.facts() for d in catalog.datasets(engine=engine)], "/datasets"
    )
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
        **dataset.facts(),
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
