"""Training runs end to end in this process: dataset in, run row + metrics + artifacts out.

The process that calls these owns the database (the CLI, or the server's job runner):
per-epoch metrics are written as they arrive, checkpoints are recorded as artifacts with size
and SHA-256, and the run's status always ends succeeded, failed or cancelled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from core.checkpoints import load_checkpoint
from core.config import Config, DataConfig
from core.evaluation import (
    baseline_predictions,
    ensemble_predictions,
    model_predictions,
    score_report,
    seed_level,
    walk_forward_evaluation,
)
from core.models import model_spec
from core.trainer import Callback, Trainer
from core.training import RestoredModel, restore_from_checkpoint, train_model
from storage.db import StorageError
from storage.feature_store import load_dataset_frame
from storage.home import DataHome
from storage.models import JobStatus
from storage.repository import (
    MetricRow,
    add_artifact,
    append_metrics,
    create_run,
    get_dataset,
    get_dataset_by_id,
    get_run,
    list_artifacts,
    session_scope,
    set_run_status,
)


class MetricWriter:
    """Trainer callback: each epoch's record becomes metric rows of the run."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        self.engine, self.run_id = engine, run_id

    def on_batch_end(self, trainer: Trainer, step: int, components: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        with session_scope(self.engine) as session:
            append_metrics(session=session, run_id=self.run_id, rows=epoch_rows(record))


def epoch_rows(record: dict[str, float]) -> list[MetricRow]:
    """'train/mse_7d' -> split train, name mse_7d; unprefixed values (lr) -> split 'epoch'."""
    epoch = int(record["epoch"])
    rows = []
    for key, value in record.items():
        if key == "epoch":
            continue
        split, _, name = key.rpartition("/")
        rows.append(MetricRow(epoch=epoch, split=split or "epoch", name=name, value=float(value)))
    return rows


def run_directory(home: DataHome, run_id: int) -> Path:
    return home.checkpoints / f"run_{run_id}"


def start_run(
    *, engine: Engine, model_name: str, dataset_name: str, training: Config, model_config: Config
) -> int:
    """Create the run row (status queued) after checking the model and dataset exist."""
    model_spec(model_name)
    with session_scope(engine) as session:
        dataset = get_dataset(session=session, name=dataset_name)
        if dataset is None:
            raise StorageError(f"No dataset named {dataset_name!r}.")
        run = create_run(
            session=session,
            model_kind=model_name,
            config={"model": model_config.to_dict(), "training": training.to_dict()},
            seed=training.seed,
            dataset_id=dataset.id,
        )
        return run.id


RUN_FILES = (
    ("checkpoint", "best.pt"),
    ("checkpoint_last", "last.pt"),
    ("history_plot", "history.png"),
    ("summary", "training_summary.json"),
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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_inputs(*, engine: Engine, home: DataHome, run_id: int) -> tuple[RunInputs, pd.DataFrame]:
    """The run's inputs and its dataset frame, read from the database; marks it running."""
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=run_id)
        if run is None:
            raise StorageError(f"No run {run_id}.")
        dataset = get_dataset_by_id(session=session, dataset_id=run.dataset_id)
        if dataset is None:
            raise StorageError(f"Run {run_id}'s dataset no longer exists.")
        frame = load_dataset_frame(session=session, name=dataset.name)
        set_run_status(session=session, run_id=run_id, status=JobStatus.RUNNING)
    inputs = RunInputs(
        run_id=run_id,
        model=run.model_kind,
        model_config=run.config["model"],
        training=run.config["training"],
        data_config=dataset.recipe.get("data_config", DataConfig().to_dict()),
        dataset=dataset.name,
        run_dir=str(run_directory(home, run_id)),
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
    """Train and test a run, writing its files; touches no database. Returns the summary."""
    spec = model_spec(inputs.model)
    folder = Path(inputs.run_dir)
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
    predictions = model_predictions(spec, result.trainer.model, result.loaders.test)
    report = score_report(spec, predictions, frame)
    summary = {
        "model": spec.name,
        "dataset": inputs.dataset,
        "parameters": result.parameters,
        "epochs": len(result.history),
        "best_epoch": result.trainer.best_epoch,
        "stopped_because": result.stopped_because,
        "best_val_loss": result.trainer.best_loss,
        "test": {h: _headline(section) for h, section in report.items()},
    }
    result.trainer.plot_history(folder / "history.png")
    (folder / "training_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def finish_run(*, engine: Engine, inputs: RunInputs, summary: dict[str, Any]) -> None:
    """Record the run's files as artifacts and its final status and summary."""
    folder = Path(inputs.run_dir)
    cancelled = summary.get("stopped_because") == "cancelled"
    with session_scope(engine) as session:
        for kind, name in RUN_FILES:
            if (folder / name).exists():
                add_artifact(session=session, run_id=inputs.run_id, kind=kind, path=folder / name)
        set_run_status(
            session=session,
            run_id=inputs.run_id,
            status=JobStatus.CANCELLED if cancelled else JobStatus.SUCCEEDED,
            summary_metrics=summary,
        )


def fail_run(*, engine: Engine, run_id: int, error: str, status: JobStatus) -> None:
    with session_scope(engine) as session:
        set_run_status(
            session=session, run_id=run_id, status=status, summary_metrics={"error": error}
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
    try:
        summary = train_run(
            inputs,
            frame,
            callbacks=[MetricWriter(engine, run_id), *callbacks],
            should_stop=should_stop,
            device=device,
        )
    except BaseException as error:
        status = JobStatus.CANCELLED if isinstance(error, KeyboardInterrupt) else JobStatus.FAILED
        fail_run(
            engine=engine, run_id=run_id, error=f"{type(error).__name__}: {error}", status=status
        )
        raise
    finish_run(engine=engine, inputs=inputs, summary=summary)
    return summary


def _headline(section: dict[str, Any]) -> dict[str, Any]:
    figures = {
        "mse": section["regression"]["mse"],
        "pearson": section["regression"]["pearson"],
        "direction_accuracy": section["direction_accuracy"],
        "accuracy": section["classification"]["accuracy"],
        "macro_f1": section["classification"]["macro_f1"],
        "rank_ic": section["finance"]["rank_ic"],
    }
    if "vs_oracle" in section:
        figures["oracle_pearson"] = section["vs_oracle"]["pearson"]
        figures["level_vs_oracle"] = seed_level(section)
    return figures


def checkpoint_path(*, engine: Engine, run_id: int) -> Path:
    with session_scope(engine) as session:
        if get_run(session=session, run_id=run_id) is None:
            raise StorageError(f"No run {run_id}.")
        paths = [
            a.path for a in list_artifacts(session=session, run_id=run_id) if a.kind == "checkpoint"
        ]
    if not paths:
        raise StorageError(f"Run {run_id} has no checkpoint (it did not finish training).")
    return Path(paths[-1])


def evaluate_run(
    *, engine: Engine, run_id: int, baselines: bool = True, walk_forward: int = 0
) -> dict[str, Any]:
    """The run's model, every baseline and the oracle, on the run's own test rows; with
    ``walk_forward`` = k, also k expanding-window folds retrained with the run's configs."""
    run = _restore(engine, run_id)
    restored, frame = run.restored, run.frame
    spec, loaders = restored.spec, restored.loaders
    predictors = {"model": model_predictions(spec, restored.model, loaders.test)}
    if baselines:
        predictors.update(baseline_predictions(spec, frame, loaders, seed=restored.training.seed))
    report = {
        "run_id": run_id,
        "model": spec.name,
        "dataset": run.dataset,
        "test_rows": loaders.test.num_rows,
        "reports": {name: score_report(spec, p, frame) for name, p in predictors.items()},
    }
    if walk_forward:
        report["walk_forward"] = walk_forward_evaluation(
            frame,
            model_name=spec.name,
            model_config=restored.model.config,
            training=restored.training,
            data=restored.data,
            folds=walk_forward,
        )
    return report


@dataclass
class RestoredRun:
    """A finished run: its model and loaders rebuilt, its dataset frame and name."""

    restored: RestoredModel
    frame: pd.DataFrame
    dataset: str


def _restore(engine: Engine, run_id: int) -> RestoredRun:
    checkpoint = load_checkpoint(checkpoint_path(engine=engine, run_id=run_id))
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=run_id)
        dataset = get_dataset_by_id(session=session, dataset_id=run.dataset_id)
        if dataset is None:
            raise StorageError(f"Run {run_id}'s dataset no longer exists.")
        frame = load_dataset_frame(session=session, name=dataset.name)
    return RestoredRun(restore_from_checkpoint(checkpoint, frame), frame, dataset.name)


def evaluate_ensemble(*, engine: Engine, run_ids: list[int]) -> dict[str, Any]:
    """Each member and their equal-weight ensemble, on the test rows all members share."""
    runs = [_restore(engine, run_id) for run_id in run_ids]
    members = [
        (
            r.restored.spec,
            model_predictions(r.restored.spec, r.restored.model, r.restored.loaders.test),
            r.frame,
        )
        for r in runs
    ]
    specs = {spec.target for spec, _, _ in members}
    if len(specs) != 1:
        raise StorageError(
            "Ensemble members must predict the same classes; "
            + ", ".join(
                f"run {r} is {s.name}" for r, (s, _, _) in zip(run_ids, members, strict=True)
            )
        )
    spec, _, frame = members[0]
    combined = ensemble_predictions([predictions for _, predictions, _ in members])
    keys = combined[["date", "ticker"]]
    reports = {
        f"run {run_id} ({member_spec.name})": score_report(
            member_spec, keys.merge(predictions, on=["date", "ticker"]), frame
        )
        for run_id, (member_spec, predictions, _) in zip(run_ids, members, strict=True)
    }
    reports["ensemble"] = score_report(spec, combined, frame)
    return {"run_ids": run_ids, "rows": len(combined), "reports": reports}
