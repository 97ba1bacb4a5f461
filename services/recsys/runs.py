"""Recommender training runs: a run row queued, its dataset read, the two-tower model and the
baselines trained and evaluated (in this process or a worker's), and recorded; and the
``train_recommender`` job kind that does it in the background (``RECOMMENDER_TRAINING``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from core.config import Config
from core.recsys.artifacts import FILES, save_recommender
from core.recsys.config import RecsysTrainingConfig, TwoTowerConfig, recsys_configs
from core.recsys.data import check_split
from core.recsys.synthetic import RecsysData
from core.recsys.training import MODEL_NAME, train_recommender
from core.trainer import Callback, phase_teller
from services.jobs.run_owners import mark_running
from services.runs import (
    JobKind,
    MetricWriter,
    StopCheck,
    record_finished_run,
    run_directory,
    train_here,
)
from storage.data_home import DataHome
from storage.db import StorageError
from storage.models import JobStatus
from storage.recsys import load_recsys_data
from storage.repository import (
    RECOMMENDER_KIND,
    create_run,
    get_dataset,
    get_run,
    list_datasets,
    session_scope,
    set_run_status,
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
        try:
            check_split(training.split, dataset.recipe or {}, f"Dataset {dataset_name!r}")
        except ValueError as err:
            raise StorageError(str(err)) from None
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
    record_finished_run(
        engine=engine, run_id=run_id, folder=folder, files=FILES.items(), summary=summary
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
    summary = train_here(
        engine=engine,
        run_id=run_id,
        train=lambda: train_recsys_files(
            data,
            config,
            training,
            folder,
            callbacks=[MetricWriter(engine, run_id), *(callbacks or [])],
            device=device,
            report=report,
        ),
        finish=lambda summary: finish_recsys_run(
            engine=engine, run_id=run_id, folder=folder, summary=summary
        ),
    )
    return run_id, summary


def _start_recommender(
    *,
    engine: Engine,
    dataset_name: str,
    model_config: Config,
    trainings: Sequence[Config],
    **_: Any,
) -> list[int]:
    """The job kind's start: the recommender takes no baselines list or experiment."""
    return [
        start_recsys_run(
            engine=engine, dataset_name=dataset_name, config=model_config, training=training
        )
        for training in trainings
    ]


def _prepare_recommender(
    engine: Engine, home: DataHome, run_id: int, folder: Path, request: dict[str, Any]
) -> None:
    data, spec = recsys_run_inputs(engine=engine, home=home, run_id=run_id)
    for part in ("users", "items", "interactions"):
        getattr(data, part).to_parquet(folder / f"{part}.parquet")
    (folder / "job.json").write_text(
        json.dumps(
            {
                "kind": "train_recommender",
                "device": request.get("device", "auto"),
                "recommender": spec,
            },
            default=str,
        )
    )


def _run_recommender(
    folder: Path, callbacks: Sequence[Callback], should_stop: StopCheck, device: str
) -> dict:
    spec = json.loads((folder / "job.json").read_text())["recommender"]
    parts = {
        p: pd.read_parquet(folder / f"{p}.parquet") for p in ("users", "items", "interactions")
    }
    data = RecsysData(parts["users"], parts["items"], parts["interactions"], spec["recipe"])
    return train_recsys_files(
        data,
        TwoTowerConfig.from_dict(spec["config"]),
        RecsysTrainingConfig.from_dict(spec["training"]),
        Path(spec["run_dir"]),
        callbacks=callbacks,
        should_stop=should_stop,
        device=device,
        report=phase_teller(callbacks),
    )


def _finish_recommender(engine: Engine, folder: Path, summary: dict[str, Any]) -> None:
    spec = json.loads((folder / "job.json").read_text())["recommender"]
    finish_recsys_run(
        engine=engine, run_id=spec["run_id"], folder=Path(spec["run_dir"]), summary=summary
    )


RECOMMENDER_TRAINING = JobKind(
    "train_recommender",
    _start_recommender,
    _prepare_recommender,
    _run_recommender,
    _finish_recommender,
    resumable=False,
)
"""The two-tower recommender trained as a background job (restarted, not resumed)."""
