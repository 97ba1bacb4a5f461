"""Recommender runs: training (in this process or a worker), the registry of trained runs,
which one serves, and the ``Recommender`` that serves it.

A trained recommender is a run of model kind ``two_tower`` whose files
(``core.recsys.artifacts``) are recorded as artifacts; the active one serves the Recommend
page and the API. Its datasets are stored by ``storage.recsys``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from core.checkpoints import CheckpointError
from core.recsys.artifacts import FILES, load_recommender, save_recommender
from core.recsys.catalogue import Catalogue
from core.recsys.config import RecsysTrainingConfig, TwoTowerConfig, recsys_configs
from core.recsys.features import RecsysEncoder
from core.recsys.serving import Recommender
from core.recsys.synthetic import RecsysData
from core.recsys.training import MODEL_NAME, train_recommender
from core.trainer import Callback
from services.access import ensure_writable
from services.built_once import built_once
from services.run_owners import mark_running, stop_signals_held
from services.runs import (
    MetricWriter,
    artifact_problem,
    fail_run,
    run_and_dataset,
    run_directory,
)
from storage.db import StorageError
from storage.home import DataHome
from storage.models import Artifact, JobStatus
from storage.recsys import load_recsys_data
from storage.repository import (
    RECOMMENDER_KIND,
    add_artifact,
    create_run,
    get_dataset,
    get_dataset_by_id,
    get_run,
    get_setting,
    list_artifacts,
    list_datasets,
    list_runs,
    run_ids,
    session_scope,
    set_run_status,
    set_setting,
)


def start_recsys_run(
    *,
    engine: Engine,
    dataset_name: str,
    config: TwoTowerConfig,
    training: RecsysTrainingConfig | None = None,
) -> int:
    """The run row (queued) for training a recommender on a stored dataset."""
    training = training or RecsysTrainingConfig()
    with session_scope(engine) as session:
        dataset = get_dataset(session=session, name=dataset_name)
        if dataset is None or dataset.kind != RECOMMENDER_KIND:
            known = ", ".join(d.name for d in list_datasets(session=session, recommender=True))
            raise StorageError(
                f"No recommender dataset named {dataset_name!r}; known: {known or 'none yet'}."
            )
        return create_run(
            session=session,
            model_kind=MODEL_NAME,
            config={
                "model": config.to_dict(),
                "training": training.to_dict(),
                "dataset": dataset_name,
            },
            seed=training.seed,
            dataset_id=dataset.id,
        ).id


def recsys_run_inputs(
    *, engine: Engine, home: DataHome, run_id: int
) -> tuple[RecsysData, dict[str, Any]]:
    """A queued recommender run's data and settings, for a worker; marks the run running."""
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=run_id)
        data = load_recsys_data(session=session, name=run.config["dataset"])
        set_run_status(session=session, run_id=run_id, status=JobStatus.RUNNING)
    model, training = stored_configs(run.config)
    spec = {
        "run_id": run_id,
        "config": model.to_dict(),
        "training": training.to_dict(),
        "recipe": data.recipe,
        "run_dir": str(run_directory(home, run_id)),
    }
    return data, spec


def stored_configs(config: dict[str, Any]) -> tuple[TwoTowerConfig, RecsysTrainingConfig]:
    """A recommender run's model and training configs as stored (runs of earlier versions
    stored one config holding both)."""
    if "training" in config:
        return (
            TwoTowerConfig.from_dict(config["model"]),
            RecsysTrainingConfig.from_dict(config["training"]),
        )
    return recsys_configs(config["model"], partial=False)


def train_recsys_files(
    data: RecsysData,
    config: TwoTowerConfig,
    training: RecsysTrainingConfig,
    folder: Path,
    *,
    callbacks: Iterable[Callback] = (),
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
    report: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train, evaluate and write the run's files; touches no database (a worker runs it).
    ``report`` hears a line as each stage (split, encoding, training, each engine's
    evaluation) begins."""
    result = train_recommender(
        data,
        config,
        training,
        run_dir=folder,
        callbacks=callbacks,
        should_stop=should_stop,
        device=device,
        report=report,
    )
    return save_recommender(result, folder, config)


def finish_recsys_run(
    *, engine: Engine, run_id: int, folder: Path, summary: dict[str, Any]
) -> None:
    """Record the run's files as artifacts and its final status and summary."""
    with session_scope(engine) as session:
        for kind, filename in FILES.items():
            if (folder / filename).exists():
                add_artifact(session=session, run_id=run_id, kind=kind, path=folder / filename)
        cancelled = summary.get("stopped_because") == "cancelled"
        set_run_status(
            session=session,
            run_id=run_id,
            status=JobStatus.CANCELLED if cancelled else JobStatus.SUCCEEDED,
            summary_metrics=summary,
        )


def train_recsys_run(
    *,
    engine: Engine,
    home: DataHome,
    dataset_name: str,
    config: TwoTowerConfig,
    training: RecsysTrainingConfig | None = None,
    callbacks: list[Callback] | None = None,
    device: str | None = None,
    report: Callable[[str], None] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Train and evaluate a recommender in this process (the CLI), recording everything."""
    training = training or RecsysTrainingConfig()
    run_id = start_recsys_run(
        engine=engine, dataset_name=dataset_name, config=config, training=training
    )
    with session_scope(engine) as session:
        data = load_recsys_data(session=session, name=dataset_name)
        mark_running(session=session, run_id=run_id)
    folder = run_directory(home, run_id)
    try:
        summary = train_recsys_files(
            data,
            config,
            training,
            folder,
            callbacks=[MetricWriter(engine, run_id), *(callbacks or [])],
            device=device,
            report=report,
        )
    except BaseException as error:
        stopped = isinstance(error, KeyboardInterrupt)  # Ctrl-C, or SIGTERM (cli.Terminated)
        with stop_signals_held():
            fail_run(
                engine=engine,
                run_id=run_id,
                error=f"{type(error).__name__}: {error}",
                status=JobStatus.CANCELLED if stopped else JobStatus.FAILED,
            )
        raise
    with stop_signals_held():
        finish_recsys_run(engine=engine, run_id=run_id, folder=folder, summary=summary)
    return run_id, summary


def recommender_runs(*, engine: Engine) -> list[dict[str, Any]]:
    """The registry: finished recommender runs, newest first, with size, metrics, creation
    time and whether each is the active one."""
    active = active_run(engine=engine)
    rows = []
    with session_scope(engine) as session:
        for run in list_runs(session=session, model_kind=MODEL_NAME):
            if run.status != JobStatus.SUCCEEDED:
                continue
            files = list_artifacts(session=session, run_id=run.id)
            dataset = get_dataset_by_id(session=session, dataset_id=run.dataset_id)
            rows.append(
                {
                    "run": run.id,
                    "dataset": dataset.name if dataset else None,
                    "created": run.created_at,
                    "size_mb": round(sum(f.bytes for f in files) / 2**20, 2),
                    **{k: v for k, v in run.summary_metrics.get("test", {}).items()},
                    "active": run.id == active,
                }
            )
    return rows


ACTIVE = "active_recommender"


def active_run(*, engine: Engine) -> int | None:
    """The run marked active, else the newest finished recommender run."""
    with session_scope(engine) as session:
        finished = run_ids(session=session, model_kind=MODEL_NAME, status=JobStatus.SUCCEEDED)
        chosen = (get_setting(session=session, key=ACTIVE) or {}).get("run_id")
    if chosen in finished:
        return chosen
    return finished[0] if finished else None


def set_active_run(*, engine: Engine, run_id: int) -> None:
    """Make ``run_id`` the recommender the API and the Recommend page serve."""
    ensure_writable("choosing which recommender serves")
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=run_id)
        if run is None or run.model_kind != MODEL_NAME or run.status != JobStatus.SUCCEEDED:
            raise StorageError(f"Run {run_id} is not a finished recommender run.")
        set_setting(session=session, key=ACTIVE, value={"run_id": run_id})


def load_serving(*, engine: Engine, home: DataHome, run_id: int | None = None) -> Recommender:
    """The recommender that serves: the run's model over its dataset's interactions
    (the active run unless ``run_id`` says otherwise). Built once per run and process."""
    run_id = run_id if run_id is not None else active_run(engine=engine)
    if run_id is None:
        return _untrained(engine)
    with session_scope(engine) as session:
        recorded = list_artifacts(session=session, run_id=run_id)
    problem = _file_problem(recorded)
    if problem:
        raise StorageError(
            f"Recommender run {run_id} cannot serve: its {problem}; train it again or serve "
            "another run."
        )
    # The recorded checksums key the cache: a run whose files were replaced (and recorded
    # again) is loaded afresh, never served from memory.
    fingerprint = tuple(sorted(a.sha256 for a in recorded))
    try:
        return _serving(engine, home, run_id, fingerprint)
    except CheckpointError as error:
        raise StorageError(f"Recommender run {run_id} cannot serve: {error}") from None


def warm_serving(*, engine: Engine, home: DataHome) -> None:
    """Build the recommender the API serves before the first request asks for it (server
    start-up); a home with nothing to serve yet, or a run that cannot, is left to the
    request that asks, which says why. Never stops the server from starting: anything else
    that goes wrong is logged, and the first request meets it again."""
    try:
        load_serving(engine=engine, home=home)
    except StorageError:
        pass
    except Exception:  # a warm-up is an optimisation, not a start-up check
        logging.getLogger(__name__).exception("Could not build the serving recommender early")


def _file_problem(artifacts: list[Artifact]) -> str | None:
    """What is wrong with a run's recorded model files (checkpoint, encoder, config), by
    file name: missing, or not the bytes training recorded (size and SHA-256)."""
    recorded = [a for a in artifacts if a.kind in ("checkpoint", "encoder", "config")]
    if not any(a.kind == "checkpoint" for a in recorded):
        return "checkpoint was never recorded (the run did not finish)"
    for artifact in recorded:
        if artifact_problem(artifact):
            name = Path(artifact.path).name
            exists = Path(artifact.path).is_file()
            return f"{artifact.kind} file {name} is " + (
                "not the file training wrote (corrupt or replaced)" if exists else "missing"
            )
    return None


@functools.lru_cache(maxsize=2)
def _untrained(engine: Engine) -> Recommender:
    """Before any model is trained: content-based and popularity over the newest dataset."""
    with session_scope(engine) as session:
        datasets = list_datasets(session=session, recommender=True)  # newest first
        if not datasets:
            raise StorageError(
                "No recommender dataset yet; create one with `trendlab recsys synthetic NAME`."
            )
        data = load_recsys_data(session=session, name=datasets[0].name)
    config = TwoTowerConfig()
    encoder = RecsysEncoder.fit(data.users, data.items, seed=RecsysTrainingConfig().seed)
    catalogue = Catalogue.build(data, encoder)
    return Recommender(None, catalogue, data.interactions, config)


@built_once(maxsize=4)
def _serving(
    engine: Engine, home: DataHome, run_id: int, fingerprint: tuple[str, ...]
) -> Recommender:
    with session_scope(engine) as session:
        run, dataset = run_and_dataset(session=session, run_id=run_id)
        if run.model_kind != MODEL_NAME:
            raise StorageError(f"Run {run_id} is not a recommender run.")
        data = load_recsys_data(session=session, name=dataset.name)
    folder = run_directory(home, run_id)
    model, encoder, config = load_recommender(folder)
    catalogue = Catalogue.build(data, encoder)
    metrics = folder / FILES["test_metrics"]
    report = json.loads(metrics.read_text()) if metrics.is_file() else {}
    return Recommender(model, catalogue, data.interactions, config, report=report)


def recommender_report(*, engine: Engine, run_id: int) -> dict[str, Any]:
    """The run's test metrics (test_metrics.json as recorded)."""
    with session_scope(engine) as session:
        files = [
            a for a in list_artifacts(session=session, run_id=run_id) if a.kind == "test_metrics"
        ]
    if not files or not Path(files[-1].path).is_file():
        raise StorageError(f"Run {run_id} has no test metrics file.")
    return json.loads(Path(files[-1].path).read_text())


def metrics_table(report: dict[str, Any], segment: str = "all_users") -> pd.DataFrame:
    """One row per engine: each metric's mean with its 95 % interval beside it
    (``ndcg@10 low`` and ``ndcg@10 high``), best NDCG@10 first."""
    table = pd.DataFrame(report[segment]).T
    bounds = report.get("intervals", {}).get(segment, {})
    columns = []
    for metric in table.columns:
        columns.append(table[metric].rename(metric))
        found = {e: bounds.get(e, {}).get(metric) for e in table.index}
        if any(found.values()):
            for side, position in (("low", 0), ("high", 1)):
                values = {e: (v[position] if v else None) for e, v in found.items()}
                columns.append(pd.Series(values, name=f"{metric} {side}", dtype=float))
    primary = report.get("primary_metric", "ndcg@10")
    result = pd.concat(columns, axis=1)
    return result.sort_values(primary, ascending=False) if primary in result else result


def verdict_lines(report: dict[str, Any]) -> list[str]:
    """The headline verdict, the paired comparison with each baseline and the engine that
    serves, in words (the CLI and the Recommend page print the same lines)."""
    comparison = report.get("comparison") or {}
    if not comparison.get("verdict"):
        return ["No verdict: this run was evaluated without baselines (or before verdicts)."]
    lines = [f"Verdict: {comparison['sentence']}."]
    for baseline, found in comparison["against"].items():
        low, high = found["interval"]
        lines.append(
            f"  against {baseline}: {found['verdict']} (difference {found['difference']:+.3f}, "
            f"95 % interval {low:+.3f} .. {high:+.3f})"
        )
    for engine, why in (report.get("skipped") or {}).items():
        lines.append(f"  {engine}: {why}")
    serve = report.get("serve")
    if serve:
        lines.append(f"Serves warm and hot users: {serve['engine']}, because {serve['reason']}.")
    return lines
