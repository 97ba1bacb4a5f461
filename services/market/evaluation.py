"""Finished market runs studied: a run's model restored and evaluated against the baselines,
its stored evaluation, the Predictor that serves it, ensembles of runs, and walk-forward
evaluation with its job kind (``WALK_FORWARD``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from core.checkpoints import CheckpointError, load_checkpoint
from core.market.baselines import MARKET_BASELINES
from core.market.config import DataConfig
from core.market.evaluation import (
    BASELINES,
    Evaluation,
    ensemble_predictions,
    evaluate_model,
    judge_predictions,
    score_report,
)
from core.market.models import MODELS, model_spec
from core.market.predict import Predictor
from core.market.predictions import (
    BaselineCache,
    model_predictions,
    outcome_columns,
    outcomes,
)
from core.market.training import (
    RestoredModel,
    restore_from_checkpoint,
)
from core.market.tries import tries_report
from core.market.verdict import NOT_BASELINES, EvaluationConfig
from core.market.walk_forward import walk_forward_evaluation
from core.trainer import Callback
from services.access import ReadOnlyError, ensure_writable, read_only
from services.built_once import built_once
from services.runs import (
    JobKind,
    StopCheck,
    UnknownRun,
    artifact_problem,
    checkpoint_path,
    checkpoint_problem,
    run_and_dataset,
)
from storage.data_home import DataHome
from storage.db import StorageError
from storage.feature_store import load_dataset_frame
from storage.repository import (
    add_artifact,
    list_artifacts,
    run_kind,
    session_scope,
)


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


def run_dataset(
    *, engine: Engine, run_id: int, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The stored dataset the run trained on, as training read it (float32; ``columns``:
    only those it has of them)."""
    with session_scope(engine) as session:
        _, dataset = run_and_dataset(session=session, run_id=run_id)
        return load_dataset_frame(session=session, name=dataset.name, columns=columns, single=True)


def baseline_cache(*, engine: Engine, run_id: int) -> BaselineCache:
    """The cache of baseline predictions for the run's dataset version (read-only where
    writes are not allowed)."""
    with session_scope(engine) as session:
        _, dataset = run_and_dataset(session=session, run_id=run_id)
        content = dataset.content_hash
    return BaselineCache(DataHome.from_env().baselines, content, writable=not read_only())


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
    configs (``callbacks`` watch each fold's training).

    The evaluation stored when the run finished is read back when it answers the question
    (the same evaluation config, every baseline asked for that applies): nothing is refitted.
    Otherwise it is computed, and kept in place of the stored one when it is the default
    question and writes are allowed, so it is computed once."""
    config = config or EvaluationConfig()
    wanted = BASELINES if baselines else ()
    problem = checkpoint_problem(engine=engine, run_id=run_id)
    if problem:
        raise StorageError(f"Run {run_id}: {problem}.")
    stored = None if walk_forward else stored_evaluation(engine=engine, run_id=run_id)
    if stored is not None and _answers(stored, config, wanted):
        evaluation = stored
        spec = model_spec(stored.report["model"], targets=stored.report.get("targets"))
        # Only what the outcomes read: the whole of a 500-ticker dataset takes 6 s to load.
        horizons = [int(h.rstrip("d")) for h in stored.report["reports"]["model"]]
        frame = run_dataset(engine=engine, run_id=run_id, columns=outcome_columns(spec, horizons))
        meta = load_checkpoint(checkpoint_path(engine=engine, run_id=run_id)).meta
        seed, dataset = int(meta["training"].get("seed", 0)), str(meta.get("dataset", ""))
    else:
        run = _restore(engine, run_id)
        restored, frame = run.restored, run.frame
        spec, seed, dataset = restored.spec, restored.training.seed, run.dataset
        evaluation = evaluate_model(
            restored.spec,
            restored.model,
            restored.loaders,
            frame,
            baselines=wanted,
            seed=seed,
            config=config,
            cache=baseline_cache(engine=engine, run_id=run_id),
        )
        if config == EvaluationConfig() and baselines and not walk_forward:
            _keep(engine, run_id, evaluation)
    report = {"run_id": run_id, "dataset": dataset, **evaluation.report}
    rivals = [n for n in evaluation.predictors if n not in NOT_BASELINES]
    if rivals:
        model = evaluation.predictor("model")
        report["tries"] = tries_report(
            spec,
            {"model": model},
            {n: evaluation.predictor(n) for n in rivals},
            outcomes(spec, frame, model),
            primary=evaluation.report["uncertainty"]["primary"],
            strategy=config.strategy,
            seed=seed,
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
            config=config,
        )
    return report


def stored_evaluation(*, engine: Engine, run_id: int) -> Evaluation | None:
    """The evaluation kept with the run (report and per-row predictions), or None."""
    with session_scope(engine) as session:
        files = {a.kind: Path(a.path) for a in list_artifacts(session=session, run_id=run_id)}
    report_file, predictions_file = files.get("evaluation"), files.get("predictions")
    if report_file and predictions_file and report_file.exists() and predictions_file.exists():
        return Evaluation(json.loads(report_file.read_text()), pd.read_parquet(predictions_file))
    return None


def _answers(stored: Evaluation, config: EvaluationConfig, wanted: Sequence[str]) -> bool:
    """Whether a stored evaluation answers ``config`` with every baseline of ``wanted`` that
    applies to its target and data (persistence to relevance, the oracle to generated
    data)."""
    if stored.report.get("evaluation_config") != config.to_dict():
        return False
    has_oracle = any(str(c).startswith("oracle_") for c in stored.predictions.columns)
    targets = stored.report.get("targets", "")
    missing = [
        n
        for n in wanted
        if n not in stored.predictors
        and MARKET_BASELINES[n].applies(targets, has_oracle=has_oracle)
    ]
    return not missing


def _keep(engine: Engine, run_id: int, evaluation: Evaluation) -> None:
    """Store ``evaluation`` as the run's (where writes are allowed; else it is only shown)."""
    try:
        ensure_writable(f"storing the evaluation of run {run_id}")
    except ReadOnlyError:
        return
    folder = checkpoint_path(engine=engine, run_id=run_id).parent
    save_evaluation(evaluation, folder)
    with session_scope(engine) as session:
        recorded = {a.kind for a in list_artifacts(session=session, run_id=run_id)}
        for kind, name in (("evaluation", EVALUATION_FILE), ("predictions", PREDICTIONS_FILE)):
            if kind not in recorded:
                add_artifact(session=session, run_id=run_id, kind=kind, path=folder / name)


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
    stored = stored_evaluation(engine=engine, run_id=run_id)
    if stored is not None:
        return stored
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
        cache=baseline_cache(engine=engine, run_id=run_id),
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


def evaluate_ensemble(
    *, engine: Engine, run_ids: list[int], baselines: Sequence[str] = BASELINES
) -> dict[str, Any]:
    """Each member and their equal-weight ensemble, on the test rows all members share, and
    the ensemble judged as one model (intervals, verdict) against ``baselines`` fit on the
    training rows of the member that has the most (a daily model's rather than a weekly
    LSTM's, whatever the order of ``run_ids``), on the shared rows."""
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
    basis = max(range(len(runs)), key=lambda i: runs[i].restored.loaders.train.num_rows)
    judged = judge_predictions(
        members[basis][0],
        combined,
        runs[basis].restored.loaders,
        runs[basis].frame,
        baselines=baselines,
    ).report
    return {
        "run_ids": run_ids,
        "rows": len(combined),
        "reports": reports,
        "baselines_fit_on": run_ids[basis],
        "baselines": {n: r for n, r in judged["reports"].items() if n != "model"},
        "uncertainty": judged["uncertainty"],
    }


def _no_start(**_: Any) -> list[int]:
    raise TypeError("walk-forward jobs are queued with JobManager.submit_walk_forward")


def _prepare_walk_forward(
    engine: Engine, home: DataHome, run_id: int, folder: Path, request: dict[str, Any]
) -> None:

    try:
        meta = load_checkpoint(checkpoint_path(engine=engine, run_id=run_id)).meta
    except CheckpointError as error:
        raise StorageError(str(error)) from None
    run_dataset(engine=engine, run_id=run_id).to_parquet(folder / "dataset.parquet")
    spec = {
        "run_id": run_id,
        "folds": int(request.get("folds", 3)),
        "model": meta["model"],
        "model_config": meta["config"],
        "training": meta["training"],
        "data_config": meta["data_config"],
        "run_dir": str(checkpoint_path(engine=engine, run_id=run_id).parent),
    }
    (folder / "job.json").write_text(json.dumps({"kind": "walk_forward", "walk_forward": spec}))


def _run_walk_forward(
    folder: Path, callbacks: Sequence[Callback], should_stop: StopCheck, device: str
) -> dict:
    spec = json.loads((folder / "job.json").read_text())["walk_forward"]
    model = model_spec(spec["model"])
    result = walk_forward_evaluation(
        pd.read_parquet(folder / "dataset.parquet"),
        model_name=spec["model"],
        model_config=model.config_class.from_dict(spec["model_config"]),
        training=model.training_config_class.from_dict(spec["training"]),
        data=DataConfig.from_dict(spec["data_config"]),
        folds=spec["folds"],
        callbacks=callbacks,
        should_stop=should_stop,
        device=device,
    )
    return {**result, "stopped_because": "cancelled" if should_stop() else "folds"}


def _finish_walk_forward(engine: Engine, folder: Path, summary: dict[str, Any]) -> None:
    spec = json.loads((folder / "job.json").read_text())["walk_forward"]
    if summary.get("stopped_because") != "cancelled":
        record_walk_forward(engine=engine, run_id=spec["run_id"], result=summary)


WALK_FORWARD = JobKind(
    "walk_forward",
    _no_start,
    _prepare_walk_forward,
    _run_walk_forward,
    _finish_walk_forward,
    resumable=False,
    trains_run=False,
)
"""Walk-forward evaluation of a finished market run, as a background job."""


EVALUATION_FILE = "evaluation.json"


PREDICTIONS_FILE = "test_predictions.parquet"
