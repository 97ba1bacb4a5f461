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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from core.checkpoints import CheckpointError
from core.recsys.artifacts import FILES, load_recommender
from core.recsys.catalogue import Catalogue
from core.recsys.config import RecsysTrainingConfig, TwoTowerConfig
from core.recsys.engines import SECOND_STAGE
from core.recsys.features import RecsysEncoder
from core.recsys.ranker import SecondStage
from core.recsys.serving import Recommender
from core.recsys.training import MODEL_NAME
from services.access import ensure_writable
from services.built_once import built_once
from services.runs import (
    artifact_problem,
    run_and_dataset,
    run_directory,
)
from storage.data_home import DataHome
from storage.db import StorageError
from storage.models import Artifact, JobStatus
from storage.recsys import load_recsys_data
from storage.repository import (
    get_dataset_by_id,
    get_run,
    get_setting,
    list_artifacts,
    list_datasets,
    list_runs,
    run_ids,
    session_scope,
    set_setting,
)


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
        return _active(session)


def _active(session: Any) -> int | None:
    finished = run_ids(session=session, model_kind=MODEL_NAME, status=JobStatus.SUCCEEDED)
    chosen = (get_setting(session=session, key=ACTIVE) or {}).get("run_id")
    if chosen in finished:
        return chosen
    return finished[0] if finished else None


@dataclass(frozen=True)
class Serving:
    """The recommender that serves now, and the run it comes from (None: nothing trained)."""

    run_id: int | None
    recommender: Recommender


def serving(*, engine: Engine, home: DataHome) -> Serving:
    """What serves a request, with one database session and one cache lookup: the active
    run and the checksums of its recorded files read together, the built recommender found
    by them. The files themselves are checked against their records when the recommender is
    built (``_serving``), not on every request."""
    with session_scope(engine) as session:
        run_id = _active(session)
        recorded = list_artifacts(session=session, run_id=run_id) if run_id is not None else []
    if run_id is None:
        return Serving(None, _untrained(engine))
    return Serving(run_id, _cached(engine, home, run_id, recorded))


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
    if run_id is None:
        return serving(engine=engine, home=home).recommender
    with session_scope(engine) as session:
        recorded = list_artifacts(session=session, run_id=run_id)
    return _cached(engine, home, run_id, recorded)


def _cached(engine: Engine, home: DataHome, run_id: int, recorded: list[Artifact]) -> Recommender:
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
        problem = _file_problem(list_artifacts(session=session, run_id=run_id))
        if problem:
            raise StorageError(
                f"Recommender run {run_id} cannot serve: its {problem}; train it again or "
                "serve another run."
            )
        data = load_recsys_data(session=session, name=dataset.name)
    folder = run_directory(home, run_id)
    model, encoder, config = load_recommender(folder)
    catalogue = Catalogue.build(data, encoder)
    metrics = folder / FILES["test_metrics"]
    report = json.loads(metrics.read_text()) if metrics.is_file() else {}
    stored = folder / FILES[SECOND_STAGE]
    ranker = SecondStage.from_json(stored.read_text()) if stored.is_file() else None
    return Recommender(model, catalogue, data.interactions, config, report=report, ranker=ranker)


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


COUNTS = ("users_evaluated", "users_skipped")
"""Per-engine counts of test users, said once in words (``evaluated_users``), not as columns."""


def metrics_cells(report: dict[str, Any], segment: str = "all_users") -> pd.DataFrame:
    """One row per engine (best primary metric first) and one text column per metric (the
    primary one first), each cell the mean with its 95 % interval, ``0.247 (0.176..0.325)``,
    or the mean alone where no interval was computed."""
    table = pd.DataFrame(report[segment]).T
    primary = report.get("primary_metric", "ndcg@10")
    if primary in table:
        table = table.sort_values(primary, ascending=False)
    bounds = report.get("intervals", {}).get(segment, {})
    metrics = sorted((m for m in table.columns if m not in COUNTS), key=lambda m: m != primary)
    cells = {
        metric: [_cell(table.at[e, metric], bounds.get(e, {}).get(metric)) for e in table.index]
        for metric in metrics
    }
    return pd.DataFrame(cells, index=pd.Index(table.index, name="engine"))


def _cell(mean: float, interval: list[float] | None) -> str:
    if pd.isna(mean):
        return ""
    if not interval:
        return f"{mean:.3f}"
    return f"{mean:.3f} ({interval[0]:.3f}..{interval[1]:.3f})"


def evaluated_users(report: dict[str, Any], segment: str = "all_users") -> str:
    """How many test users each engine was judged on, in words (a range where engines
    differ)."""
    table = pd.DataFrame(report[segment]).T
    said = []
    for column, words in zip(COUNTS, ("test users evaluated", "skipped"), strict=True):
        if column in table:
            low, high = int(table[column].min()), int(table[column].max())
            said.append(f"{low:,} {words}" if low == high else f"{low:,}..{high:,} {words}")
    return ", ".join(said)


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
    ranker = report.get("ranker_comparison") or {}
    if ranker.get("verdict"):
        lines.append(f"Second stage: {ranker['sentence']}.")
        for other, found in ranker["against"].items():
            low, high = found["interval"]
            lines.append(
                f"  against {other}: {found['verdict']} (difference {found['difference']:+.3f}, "
                f"95 % interval {low:+.3f} .. {high:+.3f})"
            )
    serve = report.get("serve")
    if serve:
        lines.append(f"Serves warm and hot users: {serve['engine']}, because {serve['reason']}.")
    return lines
