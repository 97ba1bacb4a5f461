"""Market models: train, evaluate, ensemble, predict, export, and the model registry.

torch and the model code are imported inside the commands, so `trendlab --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    EpochsOption,
    ProgressPrinter,
    RunArgument,
    SeedOption,
    SummaryJsonOption,
    database,
    fail,
    print_training_summary,
    training_overrides,
)
from core.config import ConfigError
from storage import StorageError

ReportJsonOption = Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")]

export_app = typer.Typer(help="Export trained models.", no_args_is_help=True)


def train(
    model: Annotated[str, typer.Argument(help="Registered model name (see `trendlab models`).")],
    dataset: Annotated[str, typer.Option(help="Stored dataset name.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Partial training-config YAML.")
    ] = None,
    model_config: Annotated[
        Path | None, typer.Option("--model-config", help="Partial model-config YAML.")
    ] = None,
    epochs: EpochsOption = None,
    seed: SeedOption = None,
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda; default: CUDA if present.")
    ] = None,
    baselines: Annotated[
        str,
        typer.Option(help="Baselines evaluated beside the model: 'all', 'none' or a comma list."),
    ] = "all",
    as_json: SummaryJsonOption = False,
) -> None:
    """Train a model on a stored dataset; prints the run id and its test metrics."""
    from core.market.evaluation import BASELINES
    from core.market.models import MODELS
    from services.runs import execute_run, start_run

    if model not in MODELS:
        raise fail(f"Unknown model {model!r}; known: {', '.join(MODELS)}.")
    chosen = {"all": list(BASELINES), "none": []}.get(
        baselines.strip(), [b.strip() for b in baselines.split(",")]
    )
    unknown = [b for b in chosen if b not in BASELINES]
    if unknown:
        raise fail(f"Unknown baseline {unknown[0]!r}; known: {', '.join(BASELINES)}, none.")
    spec = MODELS[model]
    try:
        settings = (
            spec.training_config_class.load_yaml(config, partial=True).to_dict() if config else {}
        )
        training = spec.training_config_class.from_dict(
            {**settings, **training_overrides(epochs, seed)}, partial=True
        )
        architecture = (
            spec.config_class.load_yaml(model_config, partial=True)
            if model_config
            else spec.config_class()
        )
    except ConfigError as err:
        raise fail(str(err)) from None
    with database() as (home, engine):
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
            raise fail(f"Training failed: {err}") from None
    print_training_summary(run_id, summary, as_json=as_json)
    if as_json:
        return
    for horizon, figures in summary.get("test", {}).items():
        shown = ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()
        )
        typer.echo(f"  test {horizon}: {shown}")


def evaluate(
    run: RunArgument,
    walk_forward: Annotated[
        int, typer.Option(help="Also retrain and score on this many expanding-window folds.")
    ] = 0,
    as_json: ReportJsonOption = False,
) -> None:
    """The run's model beside the baselines (and the oracle on synthetic data)."""
    from core.market.evaluation import metrics_table
    from services.runs import evaluate_run

    with database() as (_, engine):
        try:
            report = evaluate_run(engine=engine, run_id=run, walk_forward=walk_forward)
        except ValueError as err:
            raise fail(str(err)) from None
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


def ensemble(
    runs: Annotated[list[int], typer.Argument(help="Two or more run ids with the same classes.")],
    as_json: ReportJsonOption = False,
) -> None:
    """Average the runs' predictions (e.g. simple_lstm + compact_dual_tower) and compare."""
    from services.runs import evaluate_ensemble

    if len(runs) < 2:
        raise fail("An ensemble needs at least two runs.")
    with database() as (_, engine):
        try:
            report = evaluate_ensemble(engine=engine, run_ids=runs)
        except ValueError as err:
            raise fail(str(err)) from None
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


def predict(
    run: RunArgument,
    input_path: Annotated[Path, typer.Option("--input", help="CSV of feature rows.")],
    output_path: Annotated[Path, typer.Option("--output", help="CSV to write.")],
) -> None:
    """Score rows of features with a run's model; writes scores, classes, probabilities."""
    from core.checkpoints import CheckpointError
    from core.market.predict import PredictionInputError, predict_csv
    from services.runs import run_predictor

    with database() as (_, engine):
        try:
            predictor = run_predictor(engine=engine, run_id=run)
        except CheckpointError as err:
            raise fail(str(err)) from None
    try:
        table = predict_csv(predictor, input_path, name=input_path.name)
    except PredictionInputError as err:
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"{input_path.name}: {err}") from None
    temporary = output_path.with_name(f".{output_path.name}.tmp")
    table.to_csv(temporary, index=False)
    temporary.replace(output_path)
    typer.echo(f"Wrote {len(table)} predictions to {output_path}.")


@export_app.command("onnx")
def export_onnx_command(
    run: RunArgument,
    path: Annotated[Path, typer.Argument(help="Where to write the .onnx file.")],
) -> None:
    """Export a run's model to ONNX (checked against PyTorch in the test suite)."""
    from core.checkpoints import CheckpointError, load_checkpoint
    from core.market.export import export_onnx
    from core.market.models import model_spec, rebuild_model
    from core.market.predict import Predictor
    from services.runs import checkpoint_path

    with database() as (_, engine):
        try:
            checkpoint = load_checkpoint(checkpoint_path(engine=engine, run_id=run))
            spec = model_spec(checkpoint.meta["model"])
            steps = Predictor.from_checkpoint(checkpoint).sequence_length
            names = export_onnx(spec, rebuild_model(checkpoint), path, steps=steps)
        except CheckpointError as err:
            raise fail(str(err)) from None
    typer.echo(f"Wrote {path}: inputs {', '.join(spec.inputs)}; outputs {', '.join(names)}.")


def models_list() -> None:
    """List the registered models: market models with their default size, and the
    recommender (its size follows the catalogue)."""
    from core.market.models import count_parameters, create_model
    from core.registry import TRAINABLE

    for name, model in TRAINABLE.items():
        size = (
            f"{count_parameters(create_model(name)):>9,} params"
            if model.domain == "market"
            else f"{'recsys':>16}"
        )
        typer.echo(f"{name:20} {size}  {model.description}")
