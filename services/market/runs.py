"""Market training runs end to end: a run row queued, its inputs read, trained (in this
process or a worker's), and recorded; and the ``train`` job kind that does it in the
background (``MARKET_TRAINING``).

The process that records owns the database (the CLI, or the server's job manager): per-epoch
metrics are written as they arrive, checkpoints are recorded as artifacts with size and
SHA-256, and the run's status always ends succeeded, failed or cancelled.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import Engine

from core.config import Config
from core.devices import run_threads
from core.market.config import DataConfig
from core.market.evaluation import (
    BASELINES,
    BaselineCache,
    evaluate_model,
    seed_level,
)
from core.market.loaders import (
    MIN_LABELLED_ROWS,
    TargetCoverage,
    target_columns,
    target_coverage,
)
from core.market.models import model_spec
from core.market.training import (
    fit_to_data,
    sizing_sentence,
    train_model,
)
from core.trainer import Callback, flushed_denormals, phase_teller
from services.jobs.run_owners import mark_running
from services.market.evaluation import EVALUATION_FILE, PREDICTIONS_FILE, save_evaluation
from services.runs import (
    JobKind,
    MetricWriter,
    StopCheck,
    record_finished_run,
    run_and_dataset,
    run_directory,
    train_here,
)
from storage.data_home import DataHome
from storage.db import StorageError
from storage.feature_store import load_dataset_frame
from storage.repository import (
    create_run,
    get_dataset,
    session_scope,
)


def start_runs(
    *,
    engine: Engine,
    model_name: str,
    dataset_name: str,
    trainings: Sequence[Config],
    model_config: Config,
    baselines: Iterable[str] | None = None,
    experiment: str | None = None,
    window: dict[str, str] | None = None,
    coverage: TargetCoverage | None = None,
) -> list[int]:
    """Create one run row (status queued) per training config (an experiment's seeds) after
    checking once that the model and dataset exist and the dataset has enough rows with the
    model's targets (StorageError with the counts and the reasons if not; ``coverage``: that
    check, when the caller already made it). The model config is fitted to the dataset (its
    horizons and feature widths) as it will train. ``baselines`` are evaluated beside the
    model when training ends; runs of one ``experiment`` differ only in their seed
    (``experiment_seeds``). ``window`` ({"start_date": ...}) trains on the dataset's rows
    from that date on only (``core.market.training.windowed``)."""
    if coverage is None:
        coverage = label_coverage(
            engine=engine,
            model_name=model_name,
            model_config=model_config,
            dataset_name=dataset_name,
        )
    if not coverage.enough:
        raise StorageError(
            f"Too few labelled rows to train {model_name} on {dataset_name!r}: "
            f"{coverage.sentence()}; at least {MIN_LABELLED_ROWS:,} are needed."
            + (" Try the dual tower's target: trend." if coverage.kind == "relevance" else "")
        )
    spec = model_spec(model_name)
    with session_scope(engine) as session:
        dataset = get_dataset(session=session, name=dataset_name)
        data = DataConfig.from_dict(dataset.recipe.get("data_config", DataConfig().to_dict()))
        model = fit_to_data(spec, model_config, data).to_dict()
        return [
            create_run(
                session=session,
                model_kind=model_name,
                config={
                    "model": model,
                    "training": training.to_dict(),
                    "baselines": list(BASELINES if baselines is None else baselines),
                    **({"experiment": experiment} if experiment else {}),
                    **({"window": dict(window)} if window else {}),
                },
                seed=training.seed,
                dataset_id=dataset.id,
            ).id
            for training in trainings
        ]


def start_run(*, training: Config, **settings: Any) -> int:
    """One queued run: ``start_runs`` of one training config (same keywords)."""
    return start_runs(trainings=[training], **settings)[0]


def experiment_spread(summaries: list[dict[str, Any]]) -> dict[str, dict[str, dict]]:
    """Per horizon and headline figure, over the runs of an experiment (one per seed): the
    mean, the standard deviation, and the 95 % interval of the mean across seeds (Student t
    with runs - 1 degrees of freedom), from their summaries' test figures."""
    spread: dict[str, dict[str, dict]] = {}
    for horizon in summaries[0].get("test", {}):
        figures = [s["test"][horizon] for s in summaries if horizon in s.get("test", {})]
        for name, value in figures[0].items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            values = np.array([f.get(name, np.nan) for f in figures], dtype=float)
            values = values[np.isfinite(values)]
            if not len(values):
                continue
            mean = float(values.mean())
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            half = (
                float(stats.t.ppf(0.975, len(values) - 1) * std / np.sqrt(len(values)))
                if len(values) > 1
                else float("nan")
            )
            spread.setdefault(horizon, {})[name] = {
                "mean": mean,
                "std": std,
                "low": mean - half,
                "high": mean + half,
                "runs": len(values),
            }
    return spread


def label_coverage(
    *, engine: Engine, model_name: str, model_config: Config, dataset_name: str
) -> TargetCoverage:
    """How many rows of the dataset carry every target the model (as configured) learns, and
    why the others do not; StorageError when the dataset does not exist."""
    with session_scope(engine) as session:
        dataset = get_dataset(session=session, name=dataset_name)
        if dataset is None:
            raise StorageError(f"No dataset named {dataset_name!r}.")
        data = DataConfig.from_dict(dataset.recipe.get("data_config", DataConfig().to_dict()))
        targets = model_spec(model_name, model_config).targets
        wanted = [*target_columns(targets, data.horizons), *target_columns("trend", data.horizons)]
        frame = load_dataset_frame(session=session, name=dataset_name, columns=wanted)
    return target_coverage(frame, targets, data.horizons)


RUN_FILES = (
    ("checkpoint", "best.pt"),
    ("checkpoint_last", "last.pt"),
    ("history_plot", "history.png"),
    ("summary", "training_summary.json"),
    ("evaluation", EVALUATION_FILE),
    ("predictions", PREDICTIONS_FILE),
)


@dataclass
class RunInputs:
    """Everything a training run needs, without the database (a worker gets this as JSON)."""

    run_id: int
    model: str
    model_config: dict[str, Any]
    training: dict[str, Any]
    data_config: dict[str, Any]
    dataset: str
    run_dir: str
    resume_from: str | None = None
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    """Baselines evaluated beside the model on the test rows when training ends."""
    baseline_cache: dict[str, str] | None = None
    """Where the baselines' predictions are kept for every run on the same dataset version
    (``{"folder", "dataset"}``: the data home's baselines folder, the content hash)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_inputs(*, engine: Engine, home: DataHome, run_id: int) -> tuple[RunInputs, pd.DataFrame]:
    """The run's inputs and its dataset frame, read from the database; marks it running."""
    with session_scope(engine) as session:
        run, dataset = run_and_dataset(session=session, run_id=run_id)
        frame = load_dataset_frame(session=session, name=dataset.name, single=True)
        mark_running(session=session, run_id=run_id)
    inputs = RunInputs(
        run_id=run_id,
        model=run.model_kind,
        model_config=run.config["model"],
        training=run.config["training"],
        data_config={
            **dataset.recipe.get("data_config", DataConfig().to_dict()),
            **run.config.get("window", {}),
        },
        dataset=dataset.name,
        run_dir=str(run_directory(home, run_id)),
        baselines=run.config.get("baselines", list(BASELINES)),
        baseline_cache={"folder": str(home.baselines), "dataset": dataset.content_hash},
    )
    return inputs, frame


def train_run(
    inputs: RunInputs,
    frame: pd.DataFrame,
    *,
    callbacks: Iterable[Callback] = (),
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Train and test a run, writing its files; touches no database. Returns the summary.
    The whole of it, the test evaluation too, runs on the training config's ``threads``."""
    training = model_spec(inputs.model).training_config_class.from_dict(inputs.training)
    with run_threads(training.threads), flushed_denormals():  # the evaluation's passes too
        return _train_and_test(inputs, frame, callbacks, should_stop, device)


def _train_and_test(
    inputs: RunInputs,
    frame: pd.DataFrame,
    callbacks: Iterable[Callback],
    should_stop: Callable[[], bool] | None,
    device: str | None,
) -> dict[str, Any]:
    spec = model_spec(inputs.model)
    folder = Path(inputs.run_dir)
    callbacks = list(callbacks)  # told of the evaluation after training
    started = time.perf_counter()
    result = train_model(
        frame,
        model_name=spec.name,
        model_config=spec.config_class.from_dict(inputs.model_config),
        training=spec.training_config_class.from_dict(inputs.training),
        data=DataConfig.from_dict(inputs.data_config),
        run_dir=folder,
        meta={"run_id": inputs.run_id, "dataset": inputs.dataset},
        device=device,
        callbacks=callbacks,
        should_stop=should_stop,
        resume_from=Path(inputs.resume_from) if inputs.resume_from else None,
    )
    summary = {
        "model": spec.name,
        "target": spec.targets,
        "dataset": inputs.dataset,
        "parameters": result.parameters,
        "epochs": len(result.history),
        "best_epoch": result.trainer.best_epoch,
        "stopped_because": result.stopped_because,
        "best_val_loss": result.trainer.best_loss,
        "seconds": {"training": round(time.perf_counter() - started, 1)},
    }
    given = spec.training_config_class.from_dict(inputs.training)
    sizing = sizing_sentence(given, result.trainer.settings, result.loaders.train.num_rows)
    if sizing:
        summary["sizing"] = sizing
    # A cancelled run stops now (cancel promises 2 s); the Evaluate page evaluates its best
    # checkpoint on first view instead.
    if result.stopped_because != "cancelled":
        phase_teller(callbacks)("evaluating the model and its baselines on the test rows")
        started = time.perf_counter()
        try:
            evaluation = evaluate_model(
                result.spec,
                result.trainer.model,
                result.loaders,
                frame,
                baselines=inputs.baselines,
                seed=int(inputs.training.get("seed", 0)),
                cache=_baseline_cache(inputs),
            )
        except Exception as error:  # the trained model is kept; the problem is reported
            summary["evaluation_error"] = f"{type(error).__name__}: {error}"
        else:
            save_evaluation(evaluation, folder)
            reports = evaluation.report["reports"]["model"]
            judged = evaluation.report["uncertainty"]
            summary["test"] = {
                h: {**_headline(section), **_intervals(judged, h)} for h, section in reports.items()
            }
            summary["verdict"] = judged["verdict"]["verdict"]
            summary["collapsed"] = judged["collapse"]["collapsed"]
            if judged.get("primary"):
                summary["primary"] = {k: judged["primary"][k] for k in ("metric", "name")}
        summary["seconds"]["evaluation"] = round(time.perf_counter() - started, 1)
        result.trainer.plot_history(folder / "history.png")
    folder.mkdir(parents=True, exist_ok=True)  # a run cancelled in its first epoch saved nothing
    (folder / "training_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _baseline_cache(inputs: RunInputs) -> BaselineCache | None:
    where = inputs.baseline_cache
    return BaselineCache(Path(where["folder"]), where["dataset"]) if where else None


def finish_run(*, engine: Engine, inputs: RunInputs, summary: dict[str, Any]) -> None:
    """Record the run's files as artifacts and its final status and summary."""
    record_finished_run(
        engine=engine,
        run_id=inputs.run_id,
        folder=Path(inputs.run_dir),
        files=RUN_FILES,
        summary=summary,
    )


def execute_run(
    *,
    engine: Engine,
    home: DataHome,
    run_id: int,
    callbacks: Iterable[Callback] = (),
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Train a created run in this process (the CLI), recording everything as it goes."""
    inputs, frame = run_inputs(engine=engine, home=home, run_id=run_id)
    return train_here(
        engine=engine,
        run_id=run_id,
        train=lambda: train_run(
            inputs,
            frame,
            callbacks=[MetricWriter(engine, run_id), *callbacks],
            should_stop=should_stop,
            device=device,
        ),
        finish=lambda summary: finish_run(engine=engine, inputs=inputs, summary=summary),
    )


def _headline(section: dict[str, Any]) -> dict[str, Any]:
    figures = {
        "mse": section["regression"]["mse"],
        "pearson": section["regression"]["pearson"],
        "direction_accuracy": section["direction_accuracy"],
        "accuracy": section["classification"]["accuracy"],
        "macro_f1": section["classification"]["macro_f1"],
        "rank_ic": section["finance"]["rank_ic"],
    }
    finance = section["finance"]
    if "hedge" in section:
        figures["hedge"] = section["hedge"]
    for kind in ("market_neutral", "time_series"):  # the portfolio the target's use trades
        if kind in finance:
            figures[f"sharpe_{kind}"] = finance[kind]["sharpe"]
            figures[f"net_return_{kind}"] = finance[kind]["net_return"]
    if "long_only" in finance:
        figures["excess_long_only"] = finance["long_only"]["net_return"]
    if "vs_oracle" in section:
        figures["oracle_pearson"] = section["vs_oracle"]["pearson"]
        figures["level_vs_oracle"] = seed_level(section)
    return figures


def _intervals(judged: dict[str, Any], horizon: str) -> dict[str, float]:
    """The model's 95 % interval bounds of correlation and rank IC at one horizon, as flat
    figures (``pearson_low`` ...) so run tables and comparisons carry them."""
    bounds = judged["horizons"][horizon]["intervals"]["model"]
    return {
        f"{name}_{side}": _finite(value)
        for name in ("pearson", "rank_ic", "hedge")
        if name in bounds
        for side, value in zip(("low", "high"), bounds[name], strict=True)
    }


def _finite(value: float) -> float | None:
    """JSON for the summary (PostgreSQL's json refuses NaN): an interval not drawn over too
    few independent periods is None."""
    return float(value) if value is not None and math.isfinite(value) else None


def _prepare_market(
    engine: Engine, home: DataHome, run_id: int, folder: Path, request: dict[str, Any]
) -> None:
    inputs, frame = run_inputs(engine=engine, home=home, run_id=run_id)
    inputs.resume_from = request.get("resume_from")
    frame.to_parquet(folder / "dataset.parquet")
    job = {"kind": "train", "device": request.get("device", "auto"), "inputs": inputs.to_dict()}
    (folder / "job.json").write_text(json.dumps(job))


def _run_market(
    folder: Path, callbacks: Sequence[Callback], should_stop: StopCheck, device: str
) -> dict:
    spec = json.loads((folder / "job.json").read_text())
    frame = pd.read_parquet(folder / "dataset.parquet")
    return train_run(
        RunInputs(**spec["inputs"]),
        frame,
        callbacks=callbacks,
        should_stop=should_stop,
        device=device,
    )


def _finish_market(engine: Engine, folder: Path, summary: dict[str, Any]) -> None:
    spec = json.loads((folder / "job.json").read_text())
    finish_run(engine=engine, inputs=RunInputs(**spec["inputs"]), summary=summary)


MARKET_TRAINING = JobKind(
    "train", start_runs, _prepare_market, _run_market, _finish_market, resumable=True
)
"""A market model trained as a background job; an interrupted one resumes from its last
checkpoint."""
