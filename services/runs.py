"""Training runs end to end in this process: dataset in, run row + metrics + artifacts out.

The process that calls these owns the database (the CLI, or the server's job runner):
per-epoch metrics are written as they arrive, checkpoints are recorded as artifacts with size
and SHA-256, and the run's status always ends succeeded, failed or cancelled.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.checkpoints import load_checkpoint
from core.config import Config
from core.files import file_sha256
from core.market.config import DataConfig
from core.market.evaluation import (
    BASELINES,
    Evaluation,
    ensemble_predictions,
    evaluate_model,
    model_predictions,
    outcomes,
    score_report,
    seed_level,
    walk_forward_evaluation,
)
from core.market.loaders import MIN_LABELLED_ROWS, TargetCoverage, target_coverage
from core.market.models import MODELS, model_spec
from core.market.predict import Predictor
from core.market.training import (
    RestoredModel,
    fit_to_data,
    restore_from_checkpoint,
    train_model,
)
from core.market.tries import tries_report
from core.market.verdict import EvaluationConfig
from core.trainer import Callback, Trainer
from services.access import ReadOnlyError, ensure_writable
from services.built_once import built_once
from services.run_owners import mark_running, stop_signals_held
from storage.db import StorageError
from storage.feature_store import load_dataset_frame
from storage.home import DataHome
from storage.models import Artifact, Dataset, JobStatus, Run
from storage.repository import (
    MetricRow,
    add_artifact,
    append_metrics,
    create_run,
    get_dataset,
    get_dataset_by_id,
    get_run,
    list_artifacts,
    run_kind,
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
    *,
    engine: Engine,
    model_name: str,
    dataset_name: str,
    training: Config,
    model_config: Config,
    baselines: Iterable[str] = BASELINES,
    experiment: str | None = None,
) -> int:
    """Create the run row (status queued) after checking the model and dataset exist and the
    dataset has enough rows with the model's targets (StorageError with the counts and the
    reasons if not); the model config is fitted to the dataset (its horizons and feature
    widths) as it will train. ``baselines`` are evaluated beside the model when training
    ends; runs of one ``experiment`` differ only in their seed (``experiment_seeds``)."""
    coverage = label_coverage(
        engine=engine, model_name=model_name, model_config=model_config, dataset_name=dataset_name
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
        run = create_run(
            session=session,
            model_kind=model_name,
            config={
                "model": fit_to_data(spec, model_config, data).to_dict(),
                "training": training.to_dict(),
                "baselines": list(baselines),
                **({"experiment": experiment} if experiment else {}),
            },
            seed=training.seed,
            dataset_id=dataset.id,
        )
        return run.id


def experiment_seeds(training: Config, seeds: int) -> tuple[str | None, list[Config]]:
    """An experiment of ``seeds`` runs: its id (None for a single run) and one training config
    per run, seeded ``training.seed``, ``training.seed + 1``, ..."""
    if seeds < 1:
        raise StorageError(f"seeds must be at least 1, not {seeds}.")
    configs = [replace(training, seed=training.seed + i) for i in range(seeds)]
    return (f"exp-{uuid.uuid4().hex[:8]}" if seeds > 1 else None), configs


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
        frame = load_dataset_frame(session=session, name=dataset_name)
    data = DataConfig.from_dict(dataset.recipe.get("data_config", DataConfig().to_dict()))
    targets = model_spec(model_name, model_config).targets
    return target_coverage(frame, targets, data.horizons)


EVALUATION_FILE = "evaluation.json"
PREDICTIONS_FILE = "test_predictions.parquet"
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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_inputs(*, engine: Engine, home: DataHome, run_id: int) -> tuple[RunInputs, pd.DataFrame]:
    """The run's inputs and its dataset frame, read from the database; marks it running."""
    with session_scope(engine) as session:
        run, dataset = run_and_dataset(session=session, run_id=run_id)
        frame = load_dataset_frame(session=session, name=dataset.name)
        mark_running(session=session, run_id=run_id)
    inputs = RunInputs(
        run_id=run_id,
        model=run.model_kind,
        model_config=run.config["model"],
        training=run.config["training"],
        data_config=dataset.recipe.get("data_config", DataConfig().to_dict()),
        dataset=dataset.name,
        run_dir=str(run_directory(home, run_id)),
        baselines=run.config.get("baselines", list(BASELINES)),
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
    summary = {
        "model": spec.name,
        "dataset": inputs.dataset,
        "parameters": result.parameters,
        "epochs": len(result.history),
        "best_epoch": result.trainer.best_epoch,
        "stopped_because": result.stopped_because,
        "best_val_loss": result.trainer.best_loss,
    }
    # A cancelled run stops now (cancel promises 2 s); the Evaluate page evaluates its best
    # checkpoint on first view instead.
    if result.stopped_because != "cancelled":
        try:
            evaluation = evaluate_model(
                result.spec,
                result.trainer.model,
                result.loaders,
                frame,
                baselines=inputs.baselines,
                seed=int(inputs.training.get("seed", 0)),
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
        result.trainer.plot_history(folder / "history.png")
    folder.mkdir(parents=True, exist_ok=True)  # a run cancelled in its first epoch saved nothing
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
        with stop_signals_held():
            fail_run(
                engine=engine,
                run_id=run_id,
                error=f"{type(error).__name__}: {error}",
                status=status,
            )
        raise
    with stop_signals_held():
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
        "sharpe_market_neutral": section["finance"]["market_neutral"]["sharpe"],
        "net_return_market_neutral": section["finance"]["market_neutral"]["net_return"],
        "excess_long_only": section["finance"]["long_only"]["net_return"],
    }
    if "vs_oracle" in section:
        figures["oracle_pearson"] = section["vs_oracle"]["pearson"]
        figures["level_vs_oracle"] = seed_level(section)
    return figures


def _intervals(judged: dict[str, Any], horizon: str) -> dict[str, float]:
    """The model's 95 % interval bounds of correlation and rank IC at one horizon, as flat
    figures (``pearson_low`` ...) so run tables and comparisons carry them."""
    bounds = judged["horizons"][horizon]["intervals"]["model"]
    return {
        f"{name}_{side}": value
        for name in ("pearson", "rank_ic")
        for side, value in zip(("low", "high"), bounds[name], strict=True)
    }


@functools.lru_cache(maxsize=1024)
def _digest(path: str, modified_ns: int, size: int) -> str:
    """SHA-256 of a file, remembered while its modification time and size stay the same."""
    return file_sha256(Path(path))


def artifact_problem(artifact: Artifact) -> str | None:
    """Why a recorded file cannot be trusted (missing, or not the bytes that were recorded)."""
    path = Path(artifact.path)
    if not path.is_file():
        return f"{artifact.kind} file {path} is missing"
    stat = path.stat()
    if stat.st_size != artifact.bytes or _digest(str(path), stat.st_mtime_ns, stat.st_size) != (
        artifact.sha256
    ):
        return f"{artifact.kind} file {path} is not the file training wrote (corrupt or replaced)"
    return None


def checkpoint_problems(*, engine: Engine) -> dict[int, str]:
    """Run id -> what is wrong with its newest checkpoint, for every run whose checkpoint
    is missing or altered (runs that never wrote one are not listed)."""
    with session_scope(engine) as session:
        newest = {a.run_id: a for a in list_artifacts(session=session, kind="checkpoint")}
    problems = {run_id: artifact_problem(artifact) for run_id, artifact in newest.items()}
    return {run_id: problem for run_id, problem in problems.items() if problem}


def checkpoint_problem(*, engine: Engine, run_id: int) -> str | None:
    with session_scope(engine) as session:
        recorded = list_artifacts(session=session, run_id=run_id, kind="checkpoint")
    if not recorded:
        return "it has no checkpoint (it did not finish training)"
    return artifact_problem(recorded[-1])


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


class UnknownRun(StorageError):
    """No run has the id asked for."""


def run_predictor(*, engine: Engine, run_id: int) -> Predictor:
    """The run's model ready to score rows; UnknownRun when there is no such run, and
    StorageError names a missing or altered file."""
    with session_scope(engine) as session:
        kind = run_kind(session=session, run_id=run_id)
        if kind is None:
            raise UnknownRun(f"No run {run_id}.")
        if kind not in MODELS:
            raise StorageError(f"Run {run_id} is a {kind} run, not a market model.")
        recorded = list_artifacts(session=session, run_id=run_id, kind="checkpoint")
    problem = (
        artifact_problem(recorded[-1])
        if recorded
        else "it has no checkpoint (it did not finish training)"
    )
    if problem:
        raise StorageError(f"Run {run_id}: {problem}.")
    return _predictor(recorded[-1].path, recorded[-1].sha256)


@built_once(maxsize=8)
def _predictor(path: str, sha256: str) -> Predictor:
    """A checkpoint's Predictor, built once per file and content: the key is the digest the
    caller has just checked against the bytes on disk, so a replaced file loads afresh.
    A Predictor keeps no state between calls, so requests can share it."""
    return Predictor.from_checkpoint(Path(path))


def run_dataset(*, engine: Engine, run_id: int) -> pd.DataFrame:
    """The stored dataset the run trained on."""
    with session_scope(engine) as session:
        _, dataset = run_and_dataset(session=session, run_id=run_id)
        return load_dataset_frame(session=session, name=dataset.name)


def run_and_dataset(*, session: Session, run_id: int) -> tuple[Run, Dataset]:
    """The run and its dataset rows; StorageError when either is gone."""
    run = get_run(session=session, run_id=run_id)
    if run is None:
        raise StorageError(f"No run {run_id}.")
    dataset = get_dataset_by_id(session=session, dataset_id=run.dataset_id)
    if dataset is None:
        raise StorageError(f"Run {run_id}'s dataset no longer exists.")
    return run, dataset


def evaluate_run(
    *,
    engine: Engine,
    run_id: int,
    baselines: bool = True,
    walk_forward: int = 0,
    callbacks: Iterable[Callback] = (),
    config: EvaluationConfig | None = None,
) -> dict[str, Any]:
    """The run's model, every baseline and the oracle, on the run's own test rows, with the
    run counted as one try (``tries``: its deflated Sharpe and SPA against the baselines);
    with ``walk_forward`` = k, also k expanding-window folds retrained with the run's
    configs (``callbacks`` watch each fold's training)."""
    config = config or EvaluationConfig()
    run = _restore(engine, run_id)
    restored, frame = run.restored, run.frame
    evaluation = evaluate_model(
        restored.spec,
        restored.model,
        restored.loaders,
        frame,
        baselines=BASELINES if baselines else (),
        seed=restored.training.seed,
        config=config,
    )
    report = {"run_id": run_id, "dataset": run.dataset, **evaluation.report}
    rivals = [n for n in evaluation.predictors if n not in ("model", "oracle")]
    if rivals:
        model = evaluation.predictor("model")
        report["tries"] = tries_report(
            restored.spec,
            {"model": model},
            {n: evaluation.predictor(n) for n in rivals},
            outcomes(restored.spec, frame, model),
            primary=evaluation.report["uncertainty"]["primary"],
            strategy=config.strategy,
            seed=restored.training.seed,
        )
    if walk_forward:
        report["walk_forward"] = walk_forward_evaluation(
            frame,
            model_name=restored.spec.name,
            model_config=restored.model.config,
            training=restored.training,
            data=restored.data,
            folds=walk_forward,
            callbacks=list(callbacks),
        )
    return report


WALK_FORWARD_FILE = "walk_forward.json"


def record_walk_forward(*, engine: Engine, run_id: int, result: dict[str, Any]) -> None:
    """Keep a walk-forward evaluation beside the run (a file and its artifact record)."""
    folder = checkpoint_path(engine=engine, run_id=run_id).parent
    (folder / WALK_FORWARD_FILE).write_text(json.dumps(result, indent=1, default=float))
    with session_scope(engine) as session:
        add_artifact(
            session=session, run_id=run_id, kind="walk_forward", path=folder / WALK_FORWARD_FILE
        )


def load_walk_forward(*, engine: Engine, run_id: int) -> dict[str, Any] | None:
    """The run's newest walk-forward evaluation, or None when it has none."""
    with session_scope(engine) as session:
        files = list_artifacts(session=session, run_id=run_id, kind="walk_forward")
    if not files or not Path(files[-1].path).is_file():
        return None
    return json.loads(Path(files[-1].path).read_text())


def save_evaluation(evaluation: Evaluation, folder: Path) -> None:
    """evaluation.json and the per-row test predictions (Parquet: no pickle to load)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / EVALUATION_FILE).write_text(json.dumps(evaluation.report, indent=1, default=float))
    evaluation.predictions.to_parquet(folder / PREDICTIONS_FILE, index=False)


def load_evaluation(*, engine: Engine, run_id: int) -> Evaluation:
    """The evaluation written when the run finished; computed now (and recorded) for a run
    trained before evaluations were kept. Raises StorageError naming a missing or changed
    checkpoint."""
    problem = checkpoint_problem(engine=engine, run_id=run_id)
    if problem:
        raise StorageError(f"Run {run_id}: {problem}.")
    with session_scope(engine) as session:
        files = {a.kind: Path(a.path) for a in list_artifacts(session=session, run_id=run_id)}
    report_file, predictions_file = files.get("evaluation"), files.get("predictions")
    if report_file and predictions_file and report_file.exists() and predictions_file.exists():
        return Evaluation(json.loads(report_file.read_text()), pd.read_parquet(predictions_file))
    try:
        ensure_writable(f"evaluating and storing run {run_id}")
    except ReadOnlyError as error:
        raise StorageError(
            f"Run {run_id} is not evaluated yet. {error} Evaluate it where writes are allowed "
            f"(`trendlab evaluate {run_id}`)."
        ) from None
    run = _restore(engine, run_id)
    evaluation = evaluate_model(
        run.restored.spec,
        run.restored.model,
        run.restored.loaders,
        run.frame,
        seed=run.restored.training.seed,
    )
    folder = checkpoint_path(engine=engine, run_id=run_id).parent
    save_evaluation(evaluation, folder)
    with session_scope(engine) as session:
        for kind, name in (("evaluation", EVALUATION_FILE), ("predictions", PREDICTIONS_FILE)):
            add_artifact(session=session, run_id=run_id, kind=kind, path=folder / name)
    return evaluation


@dataclass
class RestoredRun:
    """A finished run: its model and loaders rebuilt, its dataset frame and name."""

    restored: RestoredModel
    frame: pd.DataFrame
    dataset: str


def _restore(engine: Engine, run_id: int) -> RestoredRun:
    checkpoint = load_checkpoint(checkpoint_path(engine=engine, run_id=run_id))
    frame = run_dataset(engine=engine, run_id=run_id)
    return RestoredRun(
        restore_from_checkpoint(checkpoint, frame), frame, checkpoint.meta.get("dataset", "")
    )


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
