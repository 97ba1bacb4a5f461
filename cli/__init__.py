"""The `trendlab` command line: serve the dashboard, inspect the data home, check configs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import Engine

from core.config import ConfigError, field_docs
from core.configs import CONFIG_CLASSES, config_reference
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
from core.tables import ImportFailed
from storage import DataHome, DataHomeError, StorageError, open_engine
from storage.db import schema_version
from storage.feature_store import save_market_dataset
from storage.models import Dataset
from storage.repository import count_rows, get_dataset, list_datasets, session_scope

if TYPE_CHECKING:
    from core.recsys.synthetic import RecsysData

SERVER_SCRIPT = Path(__file__).resolve().parent / "server.py"  # app.py's pages + /api

app = typer.Typer(
    help="Trendlab: train, compare and serve market-trend models.", no_args_is_help=True
)
config_app = typer.Typer(help="Show and check YAML configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Build, import and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
runs_app = typer.Typer(help="List training runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
export_app = typer.Typer(help="Export trained models.", no_args_is_help=True)
app.add_typer(export_app, name="export")
recsys_app = typer.Typer(help="The developers x startups recommender.", no_args_is_help=True)
app.add_typer(recsys_app, name="recsys")


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
    demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Store the demo dataset if none exists.")
    ] = True,
) -> None:
    """Start the dashboard and the HTTP API (/api); this process then owns the database."""
    if os.environ.get("TRENDLAB_REQUIRE_AUTH", "").lower() in ("1", "true", "yes"):
        missing = [n for n in ("TRENDLAB_PASSWORD", "TRENDLAB_API_TOKEN") if not os.environ.get(n)]
        if missing:
            raise _fail(
                f"TRENDLAB_REQUIRE_AUTH is set (as in the container) but {', '.join(missing)} "
                "is not: set it, e.g. docker run -e TRENDLAB_PASSWORD=... -e "
                "TRENDLAB_API_TOKEN=..., so strangers cannot use this deployment."
            )
    _, engine = _open_home()
    if demo:
        from services.demo import store_demo_datasets

        for name in store_demo_datasets(engine=engine):
            typer.echo(f"Stored the synthetic demo dataset {name!r}.")
    engine.dispose()  # release the file before the server opens it
    command = [
        sys.executable,
        "-c",
        "import cli; cli.run_streamlit()",
        "run",
        str(SERVER_SCRIPT),
        f"--server.port={port}",
        f"--server.address={address}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
    ]
    os.execv(sys.executable, command)


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


def _data_config(path: Path | None) -> DataConfig:
    try:
        return DataConfig.load_yaml(path, partial=True) if path else DataConfig()
    except ConfigError as err:
        raise _fail(str(err)) from None


ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="DataConfig YAML (horizons, splits, ...).")
]


def _save(name: str, data: MarketData, config: DataConfig, description: str) -> None:
    _, engine = _open_home()
    try:
        dataset, reused = save_market_dataset(
            engine=engine, name=name, data=data, config=config, description=description
        )
    except (StorageError, ValueError) as err:  # ValueError: a recipe the data cannot fill
        raise _fail(str(err)) from None
    finally:
        engine.dispose()
    if reused:
        typer.echo(f"Same recipe as the stored dataset {dataset.name!r}; reused it.")
    else:
        typer.echo(
            f"Stored dataset {dataset.name!r}: {dataset.row_count} rows, "
            f"{len(dataset.tickers)} tickers, {dataset.start_date} to {dataset.end_date}."
        )


@data_app.command("synthetic")
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
        raise _fail("--tickers: give at least one ticker.")
    try:
        data = synthetic_data(
            names, start, end, seed=seed, signal=signal, horizons=data_config.horizons
        )
    except ValueError as err:
        raise _fail(f"Cannot simulate: {err}") from None
    signal_text = "with" if signal else "without"
    _save(name, data, data_config, f"synthetic, seed {seed}, {signal_text} context signal")


@data_app.command("bundled")
def data_bundled(
    name: Annotated[str, typer.Argument(help="Name for the dataset.")],
    config: ConfigOption = None,
) -> None:
    """Store the S&P 500 / NASDAQ dataset with macro context shipped by the arch package."""
    data_config = bundled_config(_data_config(config))
    _save(name, bundled_data(), data_config, "arch package: S&P 500 and NASDAQ with macro")


@data_app.command("import")
def data_import(
    name: Annotated[str, typer.Argument(help="Name for the dataset.")],
    prices: Annotated[
        list[Path], typer.Option(help="OHLCV CSV/Parquet; repeat for one file per ticker.")
    ],
    news: Annotated[Path | None, typer.Option(help="Headlines CSV.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy events CSV.")] = None,
    macro: Annotated[Path | None, typer.Option(help="Macro series CSV.")] = None,
    mapping: Annotated[
        str, typer.Option("--map", help="Column mapping, e.g. date=Date,close=Close.")
    ] = "",
    max_gap_days: Annotated[int, typer.Option(help="Warn about longer date gaps.")] = 10,
    config: ConfigOption = None,
) -> None:
    """Validate and import your own prices (and optional news, policy and macro files)."""
    data_config = _data_config(config)
    try:
        columns = parse_mapping(mapping)
    except ValueError as err:
        raise _fail(f"--map: {err}") from None
    options = ImportOptions(max_gap_days=max_gap_days, horizons=tuple(data_config.horizons))
    try:
        data, warnings = import_market(
            prices, news=news, policy=policy, macro=macro, mapping=columns, options=options
        )
    except ImportFailed as err:
        raise _fail(str(err)) from None
    for warning in warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    files = ", ".join(p.name for p in prices)
    _save(name, data, data_config, f"import of {files}")


def _dataset_facts(dataset: Dataset) -> dict[str, object]:
    return {
        "name": dataset.name,
        "kind": dataset.kind,
        "source": dataset.source,
        "rows": dataset.row_count,
        "tickers": dataset.tickers,
        "start": str(dataset.start_date),
        "end": str(dataset.end_date),
        "created": dataset.created_at.isoformat(timespec="seconds"),
    }


@data_app.command("list")
def data_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List stored datasets."""
    _, engine = _open_home()
    with session_scope(engine) as session:
        facts = [_dataset_facts(d) for d in list_datasets(session=session)]
    engine.dispose()
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
    elif not facts:
        typer.echo("No datasets yet; try `trendlab data synthetic demo`.")
    for item in [] if as_json else facts:
        typer.echo(
            f"{item['name']:20} {item['kind']:10} {item['rows']:>9} rows  "
            f"{item['start']} .. {item['end']}  {len(item['tickers'])} tickers"
        )


@data_app.command("show")
def data_show(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one dataset: source, tickers, dates, features and recipe."""
    _, engine = _open_home()
    with session_scope(engine) as session:
        dataset = get_dataset(session=session, name=name)
        if dataset is None:
            known = ", ".join(d.name for d in list_datasets(session=session)) or "none yet"
            engine.dispose()
            raise _fail(f"No dataset named {name!r}; known datasets: {known}.")
        facts = {
            **_dataset_facts(dataset),
            "features": len(dataset.features),
            "content_hash": dataset.content_hash,
            "recipe": dataset.recipe,
        }
    engine.dispose()
    if as_json:
        typer.echo(json.dumps(facts, indent=2, default=str))
    else:
        for key, value in facts.items():
            text = json.dumps(value, default=str) if isinstance(value, dict | list) else value
            typer.echo(f"{key:13} {text}")


class ProgressPrinter:
    """Prints one line per epoch on the terminal (the trainer's callback interface)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def on_batch_end(self, trainer: object, step: int, components: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer: object, record: dict[str, float]) -> None:
        if self.enabled:
            marker = " *" if record.get("best") else ""
            watched = getattr(trainer, "monitor", "val/total")
            shown = watched if watched != "val/total" else "val/corr_7d"
            typer.echo(
                f"epoch {int(record['epoch']):3d}  train {record['train/total']:.4f}  "
                f"val {record['val/total']:.4f}  {shown} {record.get(shown, 0):.3f}{marker}",
                err=True,
            )


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="Registered model name (see `trendlab models`).")],
    dataset: Annotated[str, typer.Option(help="Stored dataset name.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Partial training-config YAML.")
    ] = None,
    model_config: Annotated[
        Path | None, typer.Option("--model-config", help="Partial model-config YAML.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the seed.")] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda; default: CUDA if present.")
    ] = None,
    baselines: Annotated[
        str,
        typer.Option(help="Baselines evaluated beside the model: 'all', 'none' or a comma list."),
    ] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Train a model on a stored dataset; prints the run id and its test metrics."""
    from core.market.evaluation import BASELINES
    from core.market.models import MODELS
    from services.runs import execute_run, start_run

    if model not in MODELS:
        raise _fail(f"Unknown model {model!r}; known: {', '.join(MODELS)}.")
    chosen = {"all": list(BASELINES), "none": []}.get(
        baselines.strip(), [b.strip() for b in baselines.split(",")]
    )
    unknown = [b for b in chosen if b not in BASELINES]
    if unknown:
        raise _fail(f"Unknown baseline {unknown[0]!r}; known: {', '.join(BASELINES)}, none.")
    spec = MODELS[model]
    try:
        settings = (
            spec.training_config_class.load_yaml(config, partial=True).to_dict() if config else {}
        )
        overrides = {k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None}
        training = spec.training_config_class.from_dict({**settings, **overrides}, partial=True)
        architecture = (
            spec.config_class.load_yaml(model_config, partial=True)
            if model_config
            else spec.config_class()
        )
    except ConfigError as err:
        raise _fail(str(err)) from None
    home, engine = _open_home()
    try:
        run_id = start_run(
            engine=engine,
            model_name=model,
            dataset_name=dataset,
            training=training,
            model_config=architecture,
            baselines=chosen,
        )
        typer.echo(f"Run {run_id}: training {model} on {dataset!r}.", err=True)
        summary = execute_run(
            engine=engine,
            home=home,
            run_id=run_id,
            callbacks=[ProgressPrinter(sys.stderr.isatty() or not as_json)],
            device=device,
        )
    except (StorageError, ValueError, RuntimeError) as err:
        raise _fail(f"Training failed: {err}") from None
    finally:
        engine.dispose()
    if "evaluation_error" in summary:
        typer.secho(
            f"Run {run_id} trained and was kept, but its test evaluation failed: "
            f"{summary['evaluation_error']} (try `trendlab evaluate {run_id}`).",
            err=True,
            fg=typer.colors.YELLOW,
        )
    if as_json:
        typer.echo(json.dumps({"run_id": run_id, **summary}, indent=2, default=str))
    else:
        typer.echo(f"Run {run_id} {summary['stopped_because']} after {summary['epochs']} epochs.")
        for horizon, figures in summary.get("test", {}).items():
            shown = ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()
            )
            typer.echo(f"  test {horizon}: {shown}")


@app.command()
def evaluate(
    run: Annotated[int, typer.Argument(help="Run id.")],
    walk_forward: Annotated[
        int, typer.Option(help="Also retrain and score on this many expanding-window folds.")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
) -> None:
    """The run's model beside the baselines (and the oracle on synthetic data)."""
    from core.market.evaluation import metrics_table
    from services.runs import evaluate_run

    _, engine = _open_home()
    try:
        report = evaluate_run(engine=engine, run_id=run, walk_forward=walk_forward)
    except (StorageError, ValueError) as err:
        raise _fail(str(err)) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(
        f"Run {run}: {report['model']} on {report['dataset']!r}, {report['test_rows']} test rows."
    )
    for horizon in ("7d", "30d"):
        table = metrics_table(report["reports"], horizon)
        typer.echo(f"\n{horizon}:\n" + table.to_string(index=False, float_format="%.3f"))
    if walk_forward:
        typer.echo(f"\nwalk-forward, {walk_forward} folds: mean (std) correlation per predictor")
        for name, horizons in report["walk_forward"]["summary"].items():
            shown = "  ".join(
                f"{h} {f['pearson_mean']:.3f} ({f['pearson_std']:.3f})" for h, f in horizons.items()
            )
            typer.echo(f"  {name:10} {shown}")


@app.command()
def ensemble(
    runs: Annotated[list[int], typer.Argument(help="Two or more run ids with the same classes.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
) -> None:
    """Average the runs' predictions (e.g. simple_lstm + compact_dual_tower) and compare."""
    from services.runs import evaluate_ensemble

    if len(runs) < 2:
        raise _fail("An ensemble needs at least two runs.")
    _, engine = _open_home()
    try:
        report = evaluate_ensemble(engine=engine, run_ids=runs)
    except (StorageError, ValueError) as err:
        raise _fail(str(err)) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(f"{report['rows']} shared test rows.")
    for name, sections in report["reports"].items():
        shown = ", ".join(
            f"{h} accuracy {sections[h]['classification']['accuracy']:.3f} "
            f"macro F1 {sections[h]['classification']['macro_f1']:.3f}"
            for h in ("7d", "30d")
        )
        typer.echo(f"  {name:32} {shown}")


@app.command()
def predict(
    run: Annotated[int, typer.Argument(help="Run id.")],
    input_path: Annotated[Path, typer.Option("--input", help="CSV of feature rows.")],
    output_path: Annotated[Path, typer.Option("--output", help="CSV to write.")],
) -> None:
    """Score rows of features with a run's model; writes scores, classes, probabilities."""
    from core.checkpoints import CheckpointError
    from core.market.predict import PredictionInputError, predict_csv
    from services.runs import run_predictor

    _, engine = _open_home()
    try:
        predictor = run_predictor(engine=engine, run_id=run)
    except (StorageError, CheckpointError) as err:
        raise _fail(str(err)) from None
    finally:
        engine.dispose()
    try:
        table = predict_csv(predictor, input_path, name=input_path.name)
    except PredictionInputError as err:
        raise _fail(str(err)) from None
    except OSError as err:
        raise _fail(f"{input_path.name}: {err}") from None
    temporary = output_path.with_name(f".{output_path.name}.tmp")
    table.to_csv(temporary, index=False)
    temporary.replace(output_path)
    typer.echo(f"Wrote {len(table)} predictions to {output_path}.")


@export_app.command("onnx")
def export_onnx_command(
    run: Annotated[int, typer.Argument(help="Run id.")],
    path: Annotated[Path, typer.Argument(help="Where to write the .onnx file.")],
) -> None:
    """Export a run's model to ONNX (checked against PyTorch in the test suite)."""
    from core.checkpoints import CheckpointError, load_checkpoint
    from core.market.export import export_onnx
    from core.market.models import model_spec, rebuild_model
    from core.market.predict import Predictor
    from services.runs import checkpoint_path

    _, engine = _open_home()
    try:
        checkpoint = load_checkpoint(checkpoint_path(engine=engine, run_id=run))
        spec = model_spec(checkpoint.meta["model"])
        steps = Predictor.from_checkpoint(checkpoint).sequence_length
        names = export_onnx(spec, rebuild_model(checkpoint), path, steps=steps)
    except (StorageError, CheckpointError) as err:
        raise _fail(str(err)) from None
    finally:
        engine.dispose()
    typer.echo(f"Wrote {path}: inputs {', '.join(spec.inputs)}; outputs {', '.join(names)}.")


@app.command("models")
def models_list() -> None:
    """List the registered models."""
    from core.market.models import MODELS, count_parameters, create_model

    for name, spec in MODELS.items():
        typer.echo(
            f"{name:20} {count_parameters(create_model(name)):>9,} params  {spec.description}"
        )


@runs_app.command("list")
def runs_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List training runs, newest first."""
    from storage.repository import list_runs

    _, engine = _open_home()
    with session_scope(engine) as session:
        facts = [
            {
                "run_id": r.id,
                "model": r.model_kind,
                "status": r.status,
                "seed": r.seed,
                "created": r.created_at.isoformat(timespec="seconds"),
                "test": r.summary_metrics.get("test", {}),
            }
            for r in list_runs(session=session)
        ]
    engine.dispose()
    if as_json:
        typer.echo(json.dumps(facts, indent=2, default=str))
        return
    if not facts:
        typer.echo("No runs yet; try `trendlab train dual_tower --dataset demo`.")
    for item in facts:
        corr = item["test"].get("7d", {}).get("pearson")
        shown = f"test corr 7d {corr:.3f}" if corr is not None else ""
        typer.echo(
            f"{item['run_id']:5} {item['model']:20} {item['status']:10} {item['created']}  {shown}"
        )


@runs_app.command("show")
def runs_show(
    run: Annotated[int, typer.Argument(help="Run id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One run: status, configs, training summary (seed 002's training_summary.json), files."""
    from storage.repository import get_run, list_artifacts

    _, engine = _open_home()
    with session_scope(engine) as session:
        found = get_run(session=session, run_id=run)
        if found is None:
            engine.dispose()
            raise _fail(f"No run {run}.")
        facts = {
            "run_id": found.id,
            "model": found.model_kind,
            "status": found.status,
            "seed": found.seed,
            "dataset_id": found.dataset_id,
            "created": found.created_at.isoformat(timespec="seconds"),
            "summary": found.summary_metrics,
            "config": found.config,
            "artifacts": [
                {"kind": a.kind, "path": a.path, "bytes": a.bytes, "sha256": a.sha256}
                for a in list_artifacts(session=session, run_id=run)
            ],
        }
    engine.dispose()
    if as_json:
        typer.echo(json.dumps(facts, indent=2, default=str))
        return
    for key in ("run_id", "model", "status", "seed", "dataset_id", "created"):
        typer.echo(f"{key:11} {facts[key]}")
    typer.echo(f"summary     {json.dumps(facts['summary'], default=str)}")
    for artifact in facts["artifacts"]:
        typer.echo(
            f"artifact    {artifact['kind']:16} {artifact['bytes']:>10} B  {artifact['path']}"
        )


def main() -> None:
    """Console entry point: run the command, then leave without interpreter teardown.

    duckdb's nanobind bindings print pages of "leaked instance" warnings at a normal
    interpreter exit; the command's work is complete and flushed by then, so skip it.
    """
    try:
        app()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()


# ------------------------------------------------------------------------------------------
# recommender


@recsys_app.command("synthetic")
def recsys_synthetic(
    name: Annotated[str, typer.Argument(help="Name to store the dataset under.")],
    users: Annotated[int, typer.Option(help="Number of users.")] = 350,
    items: Annotated[int, typer.Option(help="Number of startups.")] = 250,
    interactions: Annotated[int, typer.Option(help="Number of interactions.")] = 7500,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
) -> None:
    """Generate and store a synthetic developers x startups dataset (seed 004's scale)."""
    from core.recsys.synthetic import RecsysSpec, generate_recsys

    try:
        spec = RecsysSpec(users=users, items=items, interactions=interactions, seed=seed)
        data = generate_recsys(spec)
    except ValueError as err:
        raise _fail(f"Cannot generate: {err}") from None
    _store_recsys(name, data, f"synthetic recommender, seed {seed}")


@recsys_app.command("import")
def recsys_import(
    name: Annotated[str, typer.Argument(help="Name to store the dataset under.")],
    interactions: Annotated[
        Path, typer.Option(help="CSV/Parquet: user_id, item_id, timestamp, interaction|rating.")
    ],
    users: Annotated[Path | None, typer.Option(help="Users file (user_id + fields).")] = None,
    items: Annotated[Path | None, typer.Option(help="Items file (item_id + fields).")] = None,
    column_map: Annotated[
        str, typer.Option("--map", help="Column renames: user_id=UserID,timestamp=Time.")
    ] = "",
    events: Annotated[
        str, typer.Option(help="Values to seed types: watched=view,5=favorite,1=dislike.")
    ] = "",
) -> None:
    """Import users, items and interactions (any item domain); problems name file, line, column."""
    from core.recsys.importers import INTERACTION_COLUMNS, import_recsys, parse_events

    try:
        mapping = parse_mapping(column_map, allowed=INTERACTION_COLUMNS)
        data = import_recsys(
            interactions, users=users, items=items, mapping=mapping, events=parse_events(events)
        )
    except ImportFailed as failure:
        raise _fail(str(failure)) from None
    except ValueError as err:
        raise _fail(str(err)) from None
    _store_recsys(name, data, f"import of {interactions.name}")


def _store_recsys(name: str, data: RecsysData, description: str) -> None:
    """Save a recommender dataset in the data home and say what was stored."""
    from storage.recsys import save_recsys_dataset

    _, engine = _open_home()
    try:
        dataset, reused = save_recsys_dataset(
            engine=engine, name=name, data=data, description=description
        )
    except StorageError as err:
        raise _fail(str(err)) from None
    finally:
        engine.dispose()
    verb = "Reused" if reused else "Stored"
    typer.echo(
        f"{verb} {dataset.name!r}: {len(data.users)} users, {len(data.items)} items, "
        f"{dataset.row_count} interactions."
    )


@recsys_app.command("train")
def recsys_train(
    dataset: Annotated[str, typer.Option(help="Stored recommender dataset name.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Partial TwoTowerConfig YAML.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the seed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Train the two-tower recommender; prints its test metrics beside the baselines."""
    from core.recsys.config import TwoTowerConfig
    from services.recsys import train_recsys_run

    try:
        settings = TwoTowerConfig.load_yaml(config, partial=True).to_dict() if config else {}
        overrides = {k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None}
        two_tower = TwoTowerConfig.from_dict({**settings, **overrides}, partial=True)
    except ConfigError as err:
        raise _fail(str(err)) from None
    home, engine = _open_home()
    try:
        run_id, summary = train_recsys_run(
            engine=engine,
            home=home,
            dataset_name=dataset,
            config=two_tower,
            callbacks=[ProgressPrinter(sys.stderr.isatty() or not as_json)],
        )
    except (StorageError, ValueError, RuntimeError) as err:
        raise _fail(f"Training failed: {err}") from None
    finally:
        engine.dispose()
    if "evaluation_error" in summary:
        typer.secho(
            f"Run {run_id} trained and was kept, but its test evaluation failed: "
            f"{summary['evaluation_error']} (try `trendlab evaluate {run_id}`).",
            err=True,
            fg=typer.colors.YELLOW,
        )
    if as_json:
        typer.echo(json.dumps({"run_id": run_id, **summary}, indent=2, default=str))
        return
    typer.echo(f"Run {run_id} {summary['stopped_because']} after {summary['epochs']} epochs.")
    typer.echo("Label distribution of the training pairs:")
    for row in summary["label_distribution"]:
        typer.echo(f"  label={row['label']:.1f}: {row['rows']:>6} ({row['share']:.0%})")
    _print_recsys_metrics(home, run_id)


def _print_recsys_metrics(home: DataHome, run_id: int) -> None:
    import pandas as pd

    from services.runs import run_directory

    report = json.loads((run_directory(home, run_id) / "test_metrics.json").read_text())
    for segment in ("all_users", "cold_users"):
        table = pd.DataFrame(report[segment]).T
        typer.echo(f"\n{segment.replace('_', ' ')} (test, k={report['k']}):")
        typer.echo(table.to_string(float_format="%.3f"))


@recsys_app.command("evaluate")
def recsys_evaluate(
    run: Annotated[int, typer.Argument(help="Recommender run id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """The run's test metrics: the model beside popularity, item-kNN, content and BPR."""
    from services.runs import run_directory

    home, engine = _open_home()
    engine.dispose()
    path = run_directory(home, run) / "test_metrics.json"
    if not path.is_file():
        raise _fail(f"Run {run} has no recommender test metrics ({path} is missing).")
    if as_json:
        typer.echo(path.read_text())
    else:
        _print_recsys_metrics(home, run)


@recsys_app.command("recommend")
def recsys_recommend(
    user: Annotated[str, typer.Argument(help="User id, e.g. u0042.")],
    limit: Annotated[int, typer.Option(help="How many items (1-100).")] = 10,
    engine_name: Annotated[
        str, typer.Option("--engine", help="auto, two_tower, content or popularity.")
    ] = "auto",
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="field=value, e.g. type=collaboration.")
    ] = None,
    run: Annotated[int | None, typer.Option(help="Recommender run (default: active).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Top items for a user, with the engine that served them and why."""
    from core.recsys.serving import UnknownUser
    from services.recsys import load_serving

    malformed = [f for f in filters or [] if "=" not in f or not f.split("=", 1)[1].strip()]
    if malformed:
        raise _fail(f"--filter {malformed[0]!r} is not of the form field=value.")
    chosen = dict(f.split("=", 1) for f in filters or [])
    home, engine = _open_home()
    try:
        recommender = load_serving(engine=engine, home=home, run_id=run)
        answer = recommender.recommend(user, limit=limit, engine=engine_name, filters=chosen)
    except (StorageError, ValueError, UnknownUser) as err:
        raise _fail(str(err)) from None
    finally:
        engine.dispose()
    if as_json:
        items = answer.items[["rank", "item_id", "score", "why"]].to_dict("records")
        typer.echo(
            json.dumps(
                {"user_id": user, "engine": answer.engine, "reason": answer.reason, "items": items},
                indent=2,
            )
        )
        return
    typer.echo(f"{answer.engine}: {answer.reason}")
    shown = answer.items[["rank", "item_id", "name", "type", "score", "why"]]
    typer.echo(shown.to_string(index=False))
