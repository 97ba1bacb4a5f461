"""A trained model afterwards: evaluate it (a market run with intervals and a verdict against the
best baseline, a recommender run as `recsys evaluate` does) or a sweep's trials together,
ensemble runs, score new rows, export to ONNX.

torch and the model code are imported inside the commands, so `trendlab --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import (
    BaselinesOption,
    ProgressPrinter,
    QuietOption,
    RunArgument,
    chosen_baselines,
    database,
    fail,
)

ReportJsonOption = Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")]

export_app = typer.Typer(help="Export trained models.", no_args_is_help=True)


def _evaluation_config(primary: str, cost_bps: float, topk: int, n_drop: int) -> Any:
    from core.config import ConfigError
    from core.market.strategy import StrategyConfig
    from core.market.verdict import EvaluationConfig

    try:
        strategy = StrategyConfig(cost_bps=cost_bps, topk=topk, n_drop=n_drop)
        return EvaluationConfig(primary=primary, strategy=strategy)
    except ConfigError as err:
        raise fail(str(err)) from None


def evaluate(
    run: Annotated[int | None, typer.Argument(help="Run id (or give --sweep).")] = None,
    sweep: Annotated[
        int | None,
        typer.Option(help="Judge a sweep's trials together: deflated Sharpe, PBO and SPA."),
    ] = None,
    primary: Annotated[
        str,
        typer.Option(
            help="The verdict's metric: auto (correlation; rank IC from 20 tickers), "
            "pearson or rank_ic."
        ),
    ] = "auto",
    cost_bps: Annotated[
        float, typer.Option(help="Trading cost in basis points per unit of turnover.")
    ] = 10.0,
    topk: Annotated[
        int, typer.Option(help="Also TopkDropout over this many tickers (0: off).")
    ] = 0,
    n_drop: Annotated[int, typer.Option(help="TopkDropout: tickers swapped per day.")] = 1,
    walk_forward: Annotated[
        int, typer.Option(help="Also retrain and score on this many expanding-window folds.")
    ] = 0,
    as_json: ReportJsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """The run's model beside the baselines (and the oracle on synthetic data), or a sweep's
    trials judged together; a recommender run's test metrics as `recsys evaluate` shows them."""
    from core.market.evaluation import metrics_table
    from services.market.evaluation import evaluate_run

    config = _evaluation_config(primary, cost_bps, topk, n_drop)
    if sweep is not None:
        evaluate_sweep(sweep, config, as_json=as_json)
        return
    if run is None:
        raise fail("Give a run id, or --sweep with a sweep id.")
    if _is_recommender_run(run):
        market_options = walk_forward or topk or primary != "auto" or cost_bps != 10.0
        if market_options:
            raise fail(
                f"Run {run} is a recommender run; --walk-forward, --topk, --primary and "
                f"--cost-bps judge market runs. `trendlab recsys evaluate {run}` shows its "
                "test metrics."
            )
        from cli.recsys import recsys_evaluate

        recsys_evaluate(run, as_json=as_json)
        return
    progress = ProgressPrinter(not quiet, label="walk-forward fold")
    with database() as (_, engine):
        try:
            report = evaluate_run(
                engine=engine,
                run_id=run,
                walk_forward=walk_forward,
                callbacks=[progress],
                config=config,
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
        joined = report["walk_forward"]["joined"]
        typer.echo(
            f"\nwalk-forward, the folds' out-of-sample predictions joined: {joined['test_rows']} "
            f"rows, {joined['test_start']} to {joined['test_end']}."
        )
        echo_judgement(joined)
        for horizon in joined["reports"]["model"]:
            table = metrics_table(joined["reports"], horizon, joined["uncertainty"])
            typer.echo(f"\n{horizon}:\n" + table.to_string(index=False, float_format="%.3f"))


def _is_recommender_run(run_id: int) -> bool:
    """Whether ``run_id`` trained a recommender (an unknown run is left to the market path,
    which names it)."""
    from services import catalog
    from services.registry import TRAINABLE

    with database() as (_, engine):
        info = catalog.run(engine=engine, run_id=run_id)
    model = TRAINABLE.get(info.model) if info is not None else None
    return model is not None and "recommend" in model.pages


def evaluate_sweep(sweep_id: int, config: Any, *, as_json: bool) -> None:
    """A sweep's trials as tries of one search: per horizon the best trial against the best
    baseline (SPA), the highest raw Sharpe beside its deflated Sharpe, the PBO, the verdict."""
    from services.market.tries import sweep_tries

    with database() as (home, engine):
        try:
            report = sweep_tries(engine=engine, home=home, sweep_id=sweep_id, config=config)
        except ValueError as err:
            raise fail(str(err)) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(
        f"Sweep {sweep_id}: {report['model']} on {report['dataset']!r}, {report['trials']} "
        f"trials; primary metric {report['primary']['name']} ({report['primary']['reason']})."
    )
    typer.echo(f"Verdict: {report['verdict']['sentence']}.")
    for line in tries_lines(report):
        typer.echo(f"  {line}")


def tries_lines(report: dict) -> list[str]:
    """One line per horizon: SPA, raw and deflated Sharpe, PBO."""
    lines = []
    for horizon, s in report["horizons"].items():
        traded = ""
        if "sharpe" in s:  # a use that trades (a hedge does not)
            pbo = s["pbo"]["pbo"] if s["pbo"] else float("nan")
            traded = (
                f"; highest Sharpe {s['sharpe']:+.2f} ({s['sharpe_trial']}), deflated Sharpe "
                f"{s['deflated_sharpe']:.3f} (luck alone: {s['expected_max_sharpe']:+.2f}); "
                f"PBO {pbo:.2f}"
            )
        lines.append(
            f"{horizon}: best trial {s['best_trial']} {s['best_trial_skill']:+.3f} against "
            f"{s['best_baseline']} {s['best_baseline_skill']:+.3f}, SPA p-value "
            f"{s['spa_pvalue']:.3f}{traded}"
        )
    return lines


def echo_judgement(report: dict) -> None:
    """The headline verdict on the primary metric, and the collapse flag if raised."""
    judged = report.get("uncertainty")
    if not judged:
        return
    primary = judged.get("primary")
    if primary:
        typer.echo(f"Primary metric: {primary['name']} ({primary['reason']}).")
        if primary.get("use"):
            typer.echo(f"What it is for: {primary['use']['sentence']}")
    typer.echo(f"Verdict: {judged['verdict']['sentence']}.")
    if judged["collapse"]["collapsed"]:
        typer.secho(
            "Collapsed: " + "; ".join(judged["collapse"]["reasons"]) + ".",
            fg=typer.colors.YELLOW,
        )
    tries = report.get("tries")
    if tries:
        for horizon, s in tries["horizons"].items():
            traded = (
                f"{s.get('strategy', 'market_neutral').replace('_', '-')} Sharpe "
                f"{s['sharpe']:+.2f} after {tries['cost_bps']:g} bp costs, deflated "
                f"(probabilistic, 1 try) {s['deflated_sharpe']:.3f}; "
                if "sharpe" in s
                else ""
            )
            typer.echo(
                f"  {horizon}: {traded}SPA p-value {s['spa_pvalue']:.3f} against "
                f"{s['best_baseline']}"
            )
    gates = report.get("input_gates")
    if gates:
        largest = ", ".join(f"{name} {scale:.2f}" for name, scale in list(gates.items())[:5])
        closed = sum(scale < 0.05 for scale in gates.values())
        typer.echo(f"Input gates, largest: {largest}; {closed} of {len(gates)} below 0.05.")


def echo_intervals(report: dict, horizon: str) -> None:
    """95 % intervals of correlation and rank IC per predictor (none over too few
    independent periods), the IC's Newey-West t, and the model against the best baseline:
    the primary metric first, then the secondary."""
    from core.market.uncertainty import too_few_periods

    section = report.get("uncertainty", {}).get("horizons", {}).get(horizon)
    if not section:
        return
    if not section.get("judged", True):
        typer.echo(
            f"No intervals: {too_few_periods(section['blocks'])} (blocks of "
            f"{section['block_dates']} dates)."
        )
    else:
        blocks = section["block_dates"]
        typer.echo(f"95% intervals (block bootstrap over dates, blocks of {blocks}):")
        for name, bounds in section["intervals"].items():
            ic = section["rank_ic"][name]
            typer.echo(
                f"  {name:10} corr {bounds['pearson'][0]:+.3f}..{bounds['pearson'][1]:+.3f}"
                f"  rank IC {bounds['rank_ic'][0]:+.3f}..{bounds['rank_ic'][1]:+.3f}"
                f"  (t_NW {ic['ic_t_nw']:+.2f}, ICIR {ic['icir']:+.3f})"
            )
    ordered = sorted(section["comparisons"], key=lambda c: c.get("role") != "primary")
    for comparison in ordered:
        typer.echo(f"  - {comparison.get('role', 'secondary')}: {comparison['sentence']}")


def ensemble(
    runs: Annotated[list[int], typer.Argument(help="Two or more run ids with the same classes.")],
    baselines: BaselinesOption = "all",
    as_json: ReportJsonOption = False,
) -> None:
    """Average the runs' predictions (e.g. simple_lstm + compact_dual_tower, or the runs of
    one experiment over seeds) and compare; the ensemble is judged as one model against
    the baselines (fit on the training rows of the run that has the most): intervals and
    the verdict."""
    from services.market.evaluation import evaluate_ensemble

    if len(runs) < 2:
        raise fail("An ensemble needs at least two runs.")
    chosen = chosen_baselines(baselines)
    with database() as (_, engine):
        try:
            report = evaluate_ensemble(engine=engine, run_ids=runs, baselines=chosen)
        except ValueError as err:
            raise fail(str(err)) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(f"{report['rows']} shared test rows.")
    for name, sections in report["reports"].items():
        shown = ", ".join(
            f"{h} corr {sections[h]['regression']['pearson']:+.3f} "
            f"accuracy {sections[h]['classification']['accuracy']:.3f} "
            f"macro F1 {sections[h]['classification']['macro_f1']:.3f}"
            for h in sections
        )
        typer.echo(f"  {name:32} {shown}")
    typer.echo(
        "The ensemble as one model, against the baselines fit on run "
        f"{report['baselines_fit_on']}'s training rows:"
    )
    echo_judgement(report)
    for horizon in report["uncertainty"]["horizons"]:
        typer.echo(f"{horizon}: ", nl=False)
        echo_intervals(report, horizon)


def predict(
    run: RunArgument,
    input_path: Annotated[Path, typer.Option("--input", help="CSV of feature rows.")],
    output_path: Annotated[Path, typer.Option("--output", help="CSV to write.")],
) -> None:
    """Score rows of features with a run's model; writes scores, classes, probabilities."""
    from core.checkpoints import CheckpointError
    from core.exports import write_spreadsheet_csv
    from core.market.predict import PredictionInputError, predict_csv
    from services.market.evaluation import run_predictor

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
    write_spreadsheet_csv(table, output_path)
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
