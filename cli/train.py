"""Training any registered model (a market model: one run, or an experiment over seeds; the
recommender: as `trendlab recsys train`) and the model registry.

torch and the model code are imported inside the commands, so `trendlab --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import (
    BaselinesOption,
    DeviceOption,
    EpochsOption,
    PrecisionOption,
    ProgressPrinter,
    QuietOption,
    SeedOption,
    SummaryJsonOption,
    chosen_baselines,
    chosen_device,
    database,
    fail,
    note_precision,
    print_training_summary,
    training_overrides,
)
from cli.recsys import recsys_train
from core.config import ConfigError
from storage import StorageError


def train(
    model: Annotated[str, typer.Argument(help="Registered model name (see `trendlab models`).")],
    dataset: Annotated[str, typer.Option(help="Stored dataset name.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Partial training-config YAML.")
    ] = None,
    model_config: Annotated[
        Path | None, typer.Option("--model-config", help="Partial model-config YAML.")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="The dual tower's targets: relevance (needs context) or trend (every row)."
        ),
    ] = None,
    epochs: EpochsOption = None,
    seed: SeedOption = None,
    seeds: Annotated[
        int, typer.Option(min=1, help="Runs with seeds seed, seed+1, ...: one experiment.")
    ] = 1,
    device: DeviceOption = "auto",
    precision: PrecisionOption = None,
    baselines: BaselinesOption = "all",
    as_json: SummaryJsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Train a model on a stored dataset; prints how many rows it can learn from, the run id
    and its test metrics (with --seeds, one run per seed and their mean and spread). The
    recommender (two_tower) trains on a recommender dataset as `trendlab recsys train` does."""
    from core.market.models import MODELS
    from services.market.evaluation import evaluate_ensemble
    from services.market.runs import execute_run, label_coverage, start_run
    from services.registry import TRAINABLE
    from services.runs import experiment_seeds

    resolved = chosen_device(device)
    if model not in TRAINABLE:
        raise fail(f"Unknown model {model!r}; known: {', '.join(TRAINABLE)}.")
    if "recommend" in TRAINABLE[model].pages:  # it serves Recommend: trained as `recsys train`
        given = {
            "--model-config": model_config is not None,
            "--target": target is not None,
            "--seeds": seeds != 1,
            "--baselines": baselines != "all",
        }
        refused = [option for option, set_ in given.items() if set_]
        if refused:
            raise fail(
                f"{', '.join(refused)}: not options of the recommender, whose model and "
                "training settings are one --config file and whose baselines are all of its own."
            )
        recsys_train(
            dataset=dataset,
            config=config,
            epochs=epochs,
            seed=seed,
            device=resolved,
            precision=precision,
            as_json=as_json,
            quiet=quiet,
        )
        return
    chosen = chosen_baselines(baselines)
    spec = MODELS[model]
    try:
        settings = (
            spec.training_config_class.load_yaml(config, partial=True).to_dict() if config else {}
        )
        training = spec.training_config_class.from_dict(
            {**settings, **training_overrides(epochs, seed, precision)}, partial=True
        )
        note_precision(training.precision, resolved)
        architecture = (
            spec.config_class.load_yaml(model_config, partial=True).to_dict()
            if model_config
            else {}
        )
        architecture = spec.config_class.from_dict(
            {**architecture, **({"target": target} if target else {})}, partial=True
        )
    except ConfigError as err:
        raise fail(str(err)) from None
    summaries = {}
    with database() as (home, engine):
        try:
            coverage = label_coverage(
                engine=engine, model_name=model, model_config=architecture, dataset_name=dataset
            )
            typer.echo(f"Labelled rows: {coverage.sentence()}.", err=True)
            if not quiet:
                echo_estimate(engine, model, dataset, architecture, training, seeds)
            experiment, configs = experiment_seeds(training, seeds)
            for seeded in configs:
                run_id = start_run(
                    engine=engine,
                    model_name=model,
                    dataset_name=dataset,
                    training=seeded,
                    model_config=architecture,
                    baselines=chosen,
                    experiment=experiment,
                    coverage=coverage,  # checked once above
                )
                typer.echo(
                    f"Run {run_id}: training {model} on {dataset!r} (seed {seeded.seed}).",
                    err=True,
                )
                progress = ProgressPrinter(not quiet, label=f"run {run_id}")
                try:
                    summaries[run_id] = execute_run(
                        engine=engine,
                        home=home,
                        run_id=run_id,
                        callbacks=[progress],
                        device=resolved,
                    )
                finally:
                    progress.close()
        except (StorageError, ValueError, RuntimeError) as err:
            raise fail(f"Training failed: {err}") from None
        if len(summaries) > 1:
            try:
                mean = evaluate_ensemble(engine=engine, run_ids=list(summaries), baselines=chosen)
            except (StorageError, ValueError, RuntimeError) as err:
                mean = {"error": f"the mean of the experiment's models cannot be judged: {err}"}
            echo_experiment(experiment, summaries, mean, chosen, as_json=as_json)
            return
    run_id, summary = next(iter(summaries.items()))
    print_training_summary(run_id, summary, as_json=as_json)
    if as_json:
        return
    for horizon, figures in summary.get("test", {}).items():
        shown = ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()
        )
        typer.echo(f"  test {horizon}: {shown}")


def echo_estimate(
    engine: Any, model: str, dataset: str, architecture: Any, training: Any, seeds: int
) -> None:
    """The measured estimate (training and evaluation) and what sizing to the rows changed,
    on stderr before the first step; a dataset the estimate cannot measure says why."""
    from services.registry import estimate_training

    try:
        found = estimate_training(
            engine=engine,
            model_name=model,
            dataset_name=dataset,
            model_config=architecture,
            training=training,
            in_worker=False,  # this process trains
        )
    except (ValueError, RuntimeError) as error:
        typer.echo(f"No time estimate: {error}", err=True)
        return
    if found.sizing:
        typer.echo(f"{found.sizing}.", err=True)
    runs = f" per run, {seeds} runs" if seeds > 1 else ""
    typer.echo(f"Estimated time: {found.sentence()}{runs}.", err=True)


def echo_experiment(
    experiment: str, summaries: dict[int, dict], mean: dict, baselines: list[str], *, as_json: bool
) -> None:
    """An experiment's runs and, per horizon and headline figure, the mean ± std over its
    seeds and the 95 % interval of the mean across them; then the mean of its models judged
    as one (``evaluate_ensemble``): the verdict of the experiment."""
    from cli.evaluate import echo_judgement
    from services.market.runs import experiment_spread

    spread = experiment_spread(list(summaries.values()))
    if as_json:
        runs = [{"run_id": run_id, **summary} for run_id, summary in summaries.items()]
        kept = ("run_ids", "rows", "baselines_fit_on", "reports", "uncertainty", "error")
        judged = {k: mean[k] for k in kept if k in mean}
        typer.echo(
            json.dumps(
                {"experiment": experiment, "runs": runs, "over_seeds": spread, "mean": judged},
                default=str,
            )
        )
        return
    typer.echo(f"Experiment {experiment}: runs {', '.join(map(str, summaries))}.")
    for horizon, figures in spread.items():
        shown = ", ".join(
            f"{k} {v['mean']:.3f} ± {v['std']:.3f} ({v['low']:.3f}..{v['high']:.3f})"
            for k, v in figures.items()
        )
        typer.echo(f"  test {horizon} over {len(summaries)} seeds: {shown}")
    if "error" in mean:
        typer.secho(f"{mean['error'][0].upper()}{mean['error'][1:]}.", err=True, fg="yellow")
        return
    again = f"trendlab ensemble {' '.join(map(str, summaries))} --baselines " + (
        ",".join(baselines) or "none"
    )
    typer.echo(
        f"The mean of the {len(summaries)} seeds' models, judged as one on {mean['rows']} test "
        f"rows (`{again}`):"
    )
    echo_judgement(mean)


def models_list() -> None:
    """List the registered models with their size (a market model's parameters at its
    defaults; the recommender's follows the catalogue) and what each is."""
    from services.registry import TRAINABLE

    for name, model in TRAINABLE.items():
        typer.echo(f"{name:20} {model.size():>26}  {model.description}")
