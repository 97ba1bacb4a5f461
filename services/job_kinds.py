"""The kinds of training job, one row each: how the server starts a run and prepares a worker's
folder, what the worker runs there, and how the server records the result.

The job manager (``services.jobs``) and the worker (``services.worker``) look a job's kind up
here instead of branching on it, so a new kind of model is one more row. Which kind trains a
model follows from the registry (``core.registry``): market models train as ``train`` jobs,
the recommender as ``train_recommender`` jobs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.config import Config
from core.registry import trainable
from core.trainer import Callback
from storage.home import DataHome

StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class JobKind:
    name: str
    start: Callable[..., int]
    """(engine, model_name, dataset_name, model_config, training, baselines, experiment) ->
    run id: the run row, queued."""
    prepare: Callable[[Engine, DataHome, int, Path, dict[str, Any]], None]
    """(engine, home, run_id, folder, job progress): write job.json and the data files a
    worker needs into ``folder`` (the worker never opens the database); marks the run
    running."""
    run: Callable[[Path, Sequence[Callback], StopCheck], dict[str, Any]]
    """(folder, callbacks, should_stop) -> the run's summary: the worker's part."""
    finish: Callable[[Engine, Path, dict[str, Any]], None]
    """(engine, folder, summary): record the run's files and final status."""
    resumable: bool
    """Whether an interrupted job can go on from its last checkpoint."""
    trains_run: bool = True
    """The job trains its run: its epochs are the run's curves and its end is the run's
    status. False for a job that studies a finished run (walk-forward) and leaves it as it
    is."""


# --------------------------------------------------------------------------------------------
# Market models (dual tower, attention LSTM, seed 002's baselines)


def _start_market(
    engine: Engine,
    model_name: str,
    dataset_name: str,
    model_config: Config,
    training: Config,
    baselines: Sequence[str],
    experiment: str | None,
) -> int:
    from services.runs import start_run

    return start_run(
        engine=engine,
        model_name=model_name,
        dataset_name=dataset_name,
        training=training,
        model_config=model_config,
        baselines=baselines,
        experiment=experiment,
    )


def _prepare_market(
    engine: Engine, home: DataHome, run_id: int, folder: Path, progress: dict[str, Any]
) -> None:
    from services.runs import run_inputs

    inputs, frame = run_inputs(engine=engine, home=home, run_id=run_id)
    inputs.resume_from = progress.get("resume_from")
    frame.to_parquet(folder / "dataset.parquet")
    (folder / "job.json").write_text(json.dumps({"kind": "train", "inputs": inputs.to_dict()}))


def _run_market(folder: Path, callbacks: Sequence[Callback], should_stop: StopCheck) -> dict:
    import pandas as pd

    from services.runs import RunInputs, train_run

    spec = json.loads((folder / "job.json").read_text())
    frame = pd.read_parquet(folder / "dataset.parquet")
    return train_run(
        RunInputs(**spec["inputs"]),
        frame,
        callbacks=callbacks,
        should_stop=should_stop,
        device=spec.get("device"),
    )


def _finish_market(engine: Engine, folder: Path, summary: dict[str, Any]) -> None:
    from services.runs import RunInputs, finish_run

    spec = json.loads((folder / "job.json").read_text())
    finish_run(engine=engine, inputs=RunInputs(**spec["inputs"]), summary=summary)


# --------------------------------------------------------------------------------------------
# The two-tower recommender


def _start_recommender(
    engine: Engine,
    model_name: str,
    dataset_name: str,
    model_config: Config,
    training: Config,
    baselines: Sequence[str],
    experiment: str | None,
) -> int:
    from services.recsys import start_recsys_run

    return start_recsys_run(
        engine=engine, dataset_name=dataset_name, config=model_config, training=training
    )


def _prepare_recommender(
    engine: Engine, home: DataHome, run_id: int, folder: Path, progress: dict[str, Any]
) -> None:
    from services.recsys import recsys_run_inputs

    data, spec = recsys_run_inputs(engine=engine, home=home, run_id=run_id)
    for part in ("users", "items", "interactions"):
        getattr(data, part).to_parquet(folder / f"{part}.parquet")
    (folder / "job.json").write_text(
        json.dumps({"kind": "train_recommender", "recommender": spec}, default=str)
    )


def _run_recommender(folder: Path, callbacks: Sequence[Callback], should_stop: StopCheck) -> dict:
    import pandas as pd

    from core.recsys.config import RecsysTrainingConfig, TwoTowerConfig
    from core.recsys.synthetic import RecsysData
    from services.recsys import train_recsys_files

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
    )


def _finish_recommender(engine: Engine, folder: Path, summary: dict[str, Any]) -> None:
    from services.recsys import finish_recsys_run

    spec = json.loads((folder / "job.json").read_text())["recommender"]
    finish_recsys_run(
        engine=engine, run_id=spec["run_id"], folder=Path(spec["run_dir"]), summary=summary
    )


# --------------------------------------------------------------------------------------------
# Walk-forward evaluation of a finished market run


def _no_start(*args: Any) -> int:
    raise TypeError("walk-forward jobs are queued with JobManager.submit_walk_forward")


def _prepare_walk_forward(
    engine: Engine, home: DataHome, run_id: int, folder: Path, progress: dict[str, Any]
) -> None:
    from core.checkpoints import CheckpointError, load_checkpoint
    from services.runs import checkpoint_path, run_dataset
    from storage.db import StorageError

    try:
        meta = load_checkpoint(checkpoint_path(engine=engine, run_id=run_id)).meta
    except CheckpointError as error:
        raise StorageError(str(error)) from None
    run_dataset(engine=engine, run_id=run_id).to_parquet(folder / "dataset.parquet")
    spec = {
        "run_id": run_id,
        "folds": int(progress.get("folds", 3)),
        "model": meta["model"],
        "model_config": meta["config"],
        "training": meta["training"],
        "data_config": meta["data_config"],
        "run_dir": str(checkpoint_path(engine=engine, run_id=run_id).parent),
    }
    (folder / "job.json").write_text(json.dumps({"kind": "walk_forward", "walk_forward": spec}))


def _run_walk_forward(folder: Path, callbacks: Sequence[Callback], should_stop: StopCheck):
    import pandas as pd

    from core.market.config import DataConfig
    from core.market.evaluation import walk_forward_evaluation
    from core.market.models import model_spec

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
    )
    return {**result, "stopped_because": "cancelled" if should_stop() else "folds"}


def _finish_walk_forward(engine: Engine, folder: Path, summary: dict[str, Any]) -> None:
    from services.runs import record_walk_forward

    spec = json.loads((folder / "job.json").read_text())["walk_forward"]
    if summary.get("stopped_because") != "cancelled":
        record_walk_forward(engine=engine, run_id=spec["run_id"], result=summary)


JOB_KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("train", _start_market, _prepare_market, _run_market, _finish_market, True),
        JobKind(
            "train_recommender",
            _start_recommender,
            _prepare_recommender,
            _run_recommender,
            _finish_recommender,
            False,
        ),
        JobKind(
            "walk_forward",
            _no_start,
            _prepare_walk_forward,
            _run_walk_forward,
            _finish_walk_forward,
            resumable=False,
            trains_run=False,
        ),
    )
}
"""Job kind name (the ``jobs.kind`` column) -> how it runs."""

DOMAIN_JOB_KINDS = {"market": "train", "recsys": "train_recommender"}


def dataset_fixed_fields(model_name: str, recipe: dict[str, Any]) -> dict[str, Any]:
    """The model config fields a stored dataset fixes (dotted path -> value), from the
    dataset's recipe: a market model's input widths and horizons; none for the recommender,
    whose widths follow the catalogue at training time."""
    if trainable(model_name).domain != "market":
        return {}
    from core.market.config import DataConfig
    from core.market.models import model_spec
    from core.market.training import dataset_fields

    data = DataConfig.from_dict(recipe.get("data_config", DataConfig().to_dict()))
    return dataset_fields(model_spec(model_name), data)


def job_kind_for(model_name: str) -> JobKind:
    """The kind of job that trains ``model_name`` (a registered model)."""
    return JOB_KINDS[DOMAIN_JOB_KINDS[trainable(model_name).domain]]
