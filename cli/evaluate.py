"""A trained market model afterwards: evaluate it (with intervals and a verdict against the
best baseline), ensemble runs, score new rows, export to ONNX.

torch and the model code are imported inside the commands, so `trendlab --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.common import ProgressPrinter, QuietOption, RunArgument, database, fail

ReportJsonOption = Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")]

export_app = typer.Typer(help="Export trained models.", no_args_is_help=True)


def evaluate(
    run: RunArgument,
    walk_forward: Annotated[
        int, typer.Option(help="Also retrain and score on this many expanding-window folds.")
    ] = 0,
    as_json: ReportJsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """The run's model beside the baselines (and the oracle on synthetic data)."""
    from core.market.evaluation import metrics_table
    from services.runs import evaluate_run

    progress = ProgressPrinter(not quiet, label="walk-forward fold")
    with database() as (_, engine):
        try:
            report = evaluate_run(
                engine=engine, run_id=run, walk_forward=walk_forward, callbacks=[progress]
            )
        except ValueError as err:
            raise fail(str(err)) from None
        finally:
            progress.close()
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(
        f"Run {run}: {report['model']} on {report['dataset']!r}, {report['test_rows']} test rows."
    )
    echo_judgement(report)
    for horizon in report["reports"]["model"]:
        table = metrics_table(report["reports"], horizon)
        typer.echo(f"\n{horizon}:\n" + table.to_string(index=False, float_format="%.3f"))
        echo_intervals(report, horizon)
    if walk_forward:
        typer.echo(f"\nwalk-forward, {walk_forward} folds: mean (std) correlation per predictor")
        for name, horizons in report["walk_forward"]["summary"].items():
            shown = "  ".join(
                f"{h} {f['pearson_mean']:.3f} ({f['pearson_std']:.3f})" for h, f in horizons.items()
            )
            typer.echo(f"  {name:10} {shown}")


def echo_judgement(report: dict) -> None:
    """The overall verdict against the best baseline, and the collapse flag if raised."""
    judged = report.get("uncertainty")
    if not judged:
        return
    typer.echo(f"Verdict: {judged['verdict']['sentence']}.")
    if judged["collapse"]["collapsed"]:
        typer.secho(
            "Collapsed: " + "; ".join(judged["collapse"]["reasons"]) + ".",
            fg=typer.colors.YELLOW,
        )


def echo_intervals(report: dict, horizon: str) -> None:
    """95 % intervals of correlation and rank IC per predictor, the IC's Newey-West t, and
    the model against the best baseline on each metric."""
    section = report.get("uncertainty", {}).get("horizons", {}).get(horizon)
    if not section:
        return
    typer.echo(f"95% intervals (block bootstrap over dates, blocks of {section['block_dates']}):")
    for name, bounds in section["intervals"].items():
        ic = section["rank_ic"][name]
        typer.echo(
            f"  {name:10} corr {bounds['pearson'][0]:+.3f}..{bounds['pearson'][1]:+.3f}"
            f"  rank IC {bounds['rank_ic'][0]:+.3f}..{bounds['rank_ic'][1]:+.3f}"
            f"  (t_NW {ic['ic_t_nw']:+.2f}, ICIR {ic['icir']:+.3f})"
        )
    for comparison in section["comparisons"]:
        typer.echo(f"  - {comparison['sentence']}")


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
            for h in sections
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
