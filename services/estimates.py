"""How long a training run will take on this machine, before it starts.

A short measured calibration, not a guess: the model is built as configured and trained for a
few real batches of the real dataset (market models), or for one epoch (the recommender,
whose epochs are short), and the time per batch is scaled to the run's batches and epochs.
The figure is an upper bound in epochs (early stopping usually ends sooner) and leaves out
the evaluation at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine

from core.config import Config
from core.devices import torch_threads
from core.market.config import DataConfig
from core.market.models import create_model, model_spec
from core.market.training import build_loaders, fit_to_data
from core.recsys.baselines import BPR, EASE, EASE_MAX_ITEMS, ItemKNN
from core.recsys.evaluation import EASE_LAMBDAS, KNN_NEIGHBOURS, KNN_SHRINKAGE
from core.recsys.training import train_recommender
from core.trainer import Trainer, create_optimizer
from services import catalog
from services.registry import trainable
from storage.recsys import load_recsys_data
from storage.repository import session_scope

CALIBRATION_BATCHES = 6
WARMUP_BATCHES = 2


@dataclass(frozen=True)
class Estimate:
    seconds: float
    """Time for every epoch the config allows, and (recommenders) the baselines' tuning and
    evaluation."""
    seconds_per_epoch: float
    epochs: int
    measured: str
    """What was measured, in words (for the page's help text)."""


def estimate_training(
    *, engine: Engine, model_name: str, dataset_name: str, model_config: Config, training: Config
) -> Estimate:
    if trainable(model_name).domain == "recsys":
        return _recommender(engine, dataset_name, model_config, training)
    return _market(engine, model_name, dataset_name, model_config, training)


def _market(
    engine: Engine, model_name: str, dataset_name: str, model_config: Config, training: Config
) -> Estimate:
    dataset = catalog.dataset(engine=engine, name=dataset_name)
    data = DataConfig.from_dict(dataset.recipe.get("data_config", DataConfig().to_dict()))
    frame = catalog.dataset_frame(engine=engine, name=dataset_name)
    config = fit_to_data(model_spec(model_name), model_config, data)
    spec = model_spec(model_name, config)
    loaders = build_loaders(spec, frame, data=data, training=training, seed=training.seed)
    model = create_model(model_name, config)
    trainer = Trainer(  # the run's own step: its threads, precision, clipping and optimiser
        model,
        spec.make_loss(getattr(training, "loss", None), data.horizons),
        create_optimizer(model, training.optimizer),
        inputs=spec.inputs,
        settings=training,
    )
    model.train()
    batches = iter(loaders.train)
    elapsed, steps = 0.0, 0
    with torch_threads(training.threads):
        for index in range(WARMUP_BATCHES + CALIBRATION_BATCHES):
            batch = next(batches, None)
            if batch is None:
                break
            started = time.perf_counter()
            trainer.train_step(batch)
            if index >= WARMUP_BATCHES:
                elapsed, steps = elapsed + time.perf_counter() - started, steps + 1
    per_batch = elapsed / max(steps, 1)
    # Validation runs forward only over its rows, about a third of a training step each.
    per_epoch = per_batch * (len(loaders.train) + len(loaders.val) / 3)
    return Estimate(
        per_epoch * training.epochs,
        per_epoch,
        training.epochs,
        f"{steps} training steps of {training.batch_size} rows took {per_batch * 1000:.0f} ms "
        f"each; an epoch is {len(loaders.train)} steps",
    )


def _recommender(
    engine: Engine, dataset_name: str, model_config: Config, training: Config
) -> Estimate:
    with session_scope(engine) as session:
        data = load_recsys_data(session=session, name=dataset_name)
    one_epoch = replace(training, epochs=1, als_sweeps=1)
    started = time.perf_counter()
    result = train_recommender(data, model_config, one_epoch, baselines=False)
    total = time.perf_counter() - started
    per_epoch = result.history[0]["seconds"] if result.history else total
    per_sweep = result.sweeps[0]["seconds"] if result.sweeps else 0.0
    sweeps = per_sweep * training.als_sweeps
    baselines = _baseline_seconds(result.catalogue.history(result.split.train).matrix)
    solving = (
        f"{training.als_sweeps} least-squares sweeps of the id tables at {per_sweep:.1f} s, then "
        if result.sweeps
        else ""
    )
    return Estimate(
        sweeps + per_epoch * training.epochs + baselines,
        per_epoch,
        training.epochs,
        f"{solving}one epoch took {per_epoch:.1f} s ({total:.1f} s with the catalogue's "
        f"encoding); tuning and evaluating the baselines about {baselines:.0f} s more",
    )


BPR_EPOCHS_EXPECTED = 70
"""Epochs BPR usually trains before validation stops improving (55 to 85 on the
online-retail log): the estimate's multiplier for one measured BPR epoch."""


def _baseline_seconds(train: Any) -> float:
    """The baselines' cost from one fit of each, times the fits evaluation makes (item-kNN's
    and EASE's grids, BPR's usual epochs)."""
    started = time.perf_counter()
    ItemKNN(train)
    seconds = (time.perf_counter() - started) * len(KNN_NEIGHBOURS) * len(KNN_SHRINKAGE)
    if train.shape[1] <= EASE_MAX_ITEMS:
        started = time.perf_counter()
        EASE(train)
        seconds += (time.perf_counter() - started) * len(EASE_LAMBDAS)
    started = time.perf_counter()
    BPR(train, epochs=1)
    return seconds + (time.perf_counter() - started) * BPR_EPOCHS_EXPECTED
