"""`trendlab sweep MODEL --dataset D --trials N --space space.yaml`: a hyperparameter search.

Without ``--via-server`` this process drives the sweep to its end: it asks the study for
trials, runs them as jobs (local workers, or Ray with TRENDLAB_RAY_ADDRESS) and prints one
line per trial. With a DuckDB data home that a server holds, ``--via-server`` hands the sweep
to that server instead (its Train page shows the jobs, Evaluate the sweep).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import EpochsOption, SeedOption, database, fail, training_overrides
from cli.remote import ask
from core.config import ConfigError, parse_yaml
from storage import DataHome, DataHomeError

SpaceOption = Annotated[
    Path | None,
    typer.Option(
        "--space",
        help="YAML: dotted field -> {low, high, log} or {choices: [...]}; default: suggested.",
    ),
]


def _read_space(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        space = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as err:
        raise fail(f"Cannot read {path}: {err}") from None
    except ConfigError as err:
        raise fail(str(err)) from None
    if not isinstance(space, dict):
        raise fail(f"{path}: expected a mapping of config fields to ranges.")
    return space


def _read_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, ConfigError) as err:
        raise fail(str(err)) from None
    return data if isinstance(data, dict) else {}


def sweep(
    model: Annotated[str, typer.Argument(help="Registered market model (see `trendlab models`).")],
    dataset: Annotated[str, typer.Option(help="Stored dataset name.")],
    trials: Annotated[int, typer.Option(min=1, max=1000, help="How many trials.")] = 8,
    space: SpaceOption = None,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Trials at once.")] = 2,
    config: Annotated[
        Path | None, typer.Option("--config", help="Partial training-config YAML.")
    ] = None,
    model_config: Annotated[
        Path | None, typer.Option("--model-config", help="Partial model-config YAML.")
    ] = None,
    epochs: EpochsOption = None,
    seed: SeedOption = None,
    via_server: Annotated[
        bool,
        typer.Option("--via-server", help="Start it on the running server (DuckDB held by it)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Search a model's settings with Optuna: trials run as jobs, the median pruner stops the
    weak ones, the first trial is the given (or default) config."""
    from services.registry import TRAINABLE

    if model not in TRAINABLE:
        raise fail(f"Unknown model {model!r}; known: {', '.join(TRAINABLE)}.")
    training = {**_read_config(config), **training_overrides(epochs, seed)}
    architecture = _read_config(model_config)
    raw_space = _read_space(space)
    if via_server:
        _via_server(model, dataset, trials, parallel, raw_space, training, architecture, as_json)
        return
    from services.jobs.manager import JobManager
    from services.sweeps.space import SweepError, suggested_space
    from services.sweeps.study import run_sweep_here, start_sweep

    spec = TRAINABLE[model]
    try:
        training_config = spec.training_config_class.from_dict(training, partial=True)
        architecture_config = spec.config_class.from_dict(architecture, partial=True)
    except ConfigError as err:
        raise fail(str(err)) from None
    with database() as (home, engine):
        manager = JobManager(
            engine=engine, home=home, max_running=int(os.environ.get("TRENDLAB_MAX_JOBS", parallel))
        )
        try:
            sweep_id = start_sweep(
                manager,
                model_name=model,
                dataset_name=dataset,
                space=raw_space or suggested_space(model),
                trials=trials,
                parallel=parallel,
                model_config=architecture_config,
                training=training_config,
            )
        except SweepError as err:
            raise fail(str(err)) from None
        typer.echo(f"Sweep {sweep_id}: {trials} trials of {model} on {dataset!r}.", err=True)
        try:
            run_sweep_here(manager, sweep_id)
        finally:
            for worker in list(manager.workers.values()):
                worker.kill()  # Ctrl-C: no worker outlives the sweep it belonged to
        _report(_info(home, engine, sweep_id), as_json)


def _info(home: DataHome, engine: Any, sweep_id: int) -> dict[str, Any]:
    from services.sweeps.study import sweep_info

    return sweep_info(engine=engine, home=home, sweep_id=sweep_id).to_dict()


def _via_server(
    model: str,
    dataset: str,
    trials: int,
    parallel: int,
    space: dict[str, Any] | None,
    training: dict[str, Any],
    architecture: dict[str, Any],
    as_json: bool,
) -> None:
    """Start the sweep on the server that holds the data home and follow it there."""
    try:
        home = DataHome.from_env().ensure()
    except DataHomeError as err:
        raise fail(str(err)) from None
    body = {
        "model": model,
        "dataset": dataset,
        "trials": trials,
        "parallel": parallel,
        "space": space,
        "training": training,
        "architecture": architecture,
    }
    sweep_id = ask(home, "POST", "/sweeps", body)["sweep_id"]
    typer.echo(f"Sweep {sweep_id} started on the server; following it.", err=True)
    while True:
        info = ask(home, "GET", f"/sweeps/{sweep_id}")
        if info is not None and info["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(2)
    _report(info, as_json)


def _report(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    for trial in info["results"]:
        value = f"{trial['value']:.4f}" if trial["value"] is not None else "-"
        typer.echo(
            f"trial {trial['number']:3} {trial['state']:9} val loss {value:>8}  "
            f"run {trial['run_id']}  {json.dumps(trial['params'])}"
        )
    best = info["best"]
    if best is None:
        raise fail(f"Sweep {info['sweep_id']} {info['status']}: no trial completed.")
    typer.echo(
        f"Sweep {info['sweep_id']} {info['status']}: best trial {best['number']} "
        f"(run {best['run_id']}), val loss {best['value']:.4f}."
    )
    if info["importance"]:
        shares = ", ".join(f"{k} {v:.2f}" for k, v in info["importance"].items())
        typer.echo(f"importance: {shares}")
