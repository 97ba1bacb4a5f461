"""Training the two-tower recommender through ``core.trainer.Trainer``: split, encode, fit
on the chosen objective with early stopping on validation NDCG@10 over the full catalogue,
then evaluate beside the baselines (``core.recsys.evaluation``).

The history the user tower reads at validation is the training interactions; at test,
training plus validation; at serving, everything known. Batches come from
``core.recsys.batches``; no dense (users, items) array exists anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.config import ConfigError
from core.devices import torch_threads
from core.memory import available_memory
from core.optimizers import create_optimizer, create_scheduler
from core.recsys.als import fit_id_tables
from core.recsys.batches import INPUTS, PairBatches, UserBatches
from core.recsys.catalogue import Catalogue
from core.recsys.config import RecsysTrainingConfig, TwoTowerConfig
from core.recsys.data import (
    Split,
    check_split,
    distinct_pairs,
    labelled,
    split_interactions,
)
from core.recsys.engines import MODEL
from core.recsys.evaluation import evaluate_recommender
from core.recsys.features import RecsysEncoder
from core.recsys.model import (
    ImplicitSquaredLoss,
    InBatchSoftmaxLoss,
    MaskedSoftmaxLoss,
    TwoTowerRecommender,
    WeightedBCELoss,
)
from core.recsys.scoring import TowerScorer
from core.recsys.segments import K, Segment
from core.recsys.synthetic import RecsysData
from core.trainer import Callback, Trainer, TrainingError, seed_everything

MODEL_NAME = MODEL
USER_OBJECTIVES = ("implicit_als", "masked_softmax", "implicit_squared")
"""Objectives trained on users with held-out items (``UserBatches``), not pairs."""


@dataclass
class RecsysResult:
    model: TwoTowerRecommender
    catalogue: Catalogue
    split: Split
    history: list[dict[str, float]]
    stopped_because: str
    best_epoch: int
    label_distribution: pd.DataFrame
    evaluation: dict[str, Any]
    sweeps: list[dict[str, float]]
    """implicit_als: one record per least-squares sweep of the id tables, before the epochs."""


def train_recommender(
    data: RecsysData,
    config: TwoTowerConfig | None = None,
    training: RecsysTrainingConfig | None = None,
    *,
    run_dir: Path | None = None,
    callbacks: Iterable[Callback] = (),
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
    baselines: bool = True,
    report: Callable[[str], None] | None = None,
) -> RecsysResult:
    """Split, encode, train and evaluate; ``report`` hears a line as each stage begins."""
    config = config or TwoTowerConfig()
    training = training or RecsysTrainingConfig()
    with torch_threads(training.threads):
        return _train(
            data, config, training, run_dir, callbacks, should_stop, device, baselines, report
        )


def _train(
    data: RecsysData,
    config: TwoTowerConfig,
    training: RecsysTrainingConfig,
    run_dir: Path | None,
    callbacks: Iterable[Callback],
    should_stop: Callable[[], bool] | None,
    device: str | None,
    baselines: bool,
    report: Callable[[str], None] | None,
) -> RecsysResult:
    say = report or (lambda _: None)
    check_memory(len(data.users), len(data.items), config)
    if training.objective == "implicit_als" and not (
        config.id_embeddings and config.history_pooling == "least_squares"
    ):
        raise ConfigError(
            "objective",
            training.objective,
            "another objective, or id_embeddings on with history_pooling least_squares "
            "(implicit_als solves the id tables)",
        )
    check_split(training.split, data.recipe)
    seed = training.seed
    seed_everything(seed)
    split = split_interactions(distinct_pairs(data.interactions), by=training.split, seed=seed)
    say(
        f"split by {training.split}: {len(split.train):,} train, {len(split.val):,} validation, "
        f"{len(split.test):,} test interactions"
    )
    encoder = RecsysEncoder.fit(
        data.users,
        data.items,
        seed=seed,
        text_backend=config.text_backend,
        sentence_model_path=config.sentence_model_path,
    )
    catalogue = Catalogue.build(data, encoder)
    say(
        f"encoded {len(catalogue.user_ids):,} users ({catalogue.user_features.shape[1]} "
        f"features) and {len(catalogue.item_ids):,} items "
        f"({catalogue.item_features.shape[1]} features)"
    )
    train_history = catalogue.history(split.train)
    train_seen = catalogue.matrix(split.train)
    train_loader, val_loader = _loaders(catalogue, split, config, training)
    model = TwoTowerRecommender(
        config,
        catalogue.user_input_dim,
        catalogue.item_features.shape[1],
        len(catalogue.user_ids),
        len(catalogue.item_ids),
    )
    if training.objective == "masked_softmax":
        loss = MaskedSoftmaxLoss()
    elif training.objective == "implicit_squared":
        loss = ImplicitSquaredLoss(training.gravity)
    elif training.objective == "implicit_als":  # the towers fit what the solved ids leave
        loss = ImplicitSquaredLoss(config.pooling_gravity)
    elif training.objective == "in_batch_softmax":
        positives = train_loader.items[train_loader.labels > 0]
        share = np.bincount(positives, minlength=len(catalogue.item_ids)) + 1.0
        loss = InBatchSoftmaxLoss(torch.log(torch.tensor(share / share.sum(), dtype=torch.float32)))
    else:
        loss = WeightedBCELoss()
    optimizer = create_optimizer(model, training.optimizer)
    scheduler = create_scheduler(optimizer, training.scheduler, training.epochs)
    val_segment = Segment(catalogue, split.val, train_seen)

    def validate(network: torch.nn.Module) -> dict[str, float]:
        figures = val_segment.metrics(TowerScorer(network, catalogue, train_history))
        return {name: value for name, value in figures.items() if "@" in name}

    trainer = Trainer(
        model,
        loss.to(device or "cpu"),
        optimizer,
        scheduler,
        inputs=INPUTS,
        settings=training,
        device=device,
        callbacks=callbacks,
        checkpoint_dir=run_dir,
        checkpoint_meta={
            "model": MODEL_NAME,
            "config": config.to_dict(),
            "training": training.to_dict(),
            "user_dim": catalogue.user_input_dim,
            "item_dim": catalogue.item_features.shape[1],
            "users": len(catalogue.user_ids),
            "items": len(catalogue.item_ids),
        },
        should_stop=should_stop,
        validate=validate,
        monitor=f"val/ndcg@{K}",
        maximize=True,
    )
    sweeps: list[dict[str, float]] = []
    if training.objective == "implicit_als":
        say(f"solving the id tables by least squares, at most {training.als_sweeps} sweeps")
        sweeps, best = fit_id_tables(
            model,
            train_seen,
            sweeps=training.als_sweeps,
            validate=validate,
            monitor=f"ndcg@{K}",
            report=say,
            should_stop=should_stop,
        )
        for table in (model.user_ids, model.item_ids):
            table.weight.requires_grad_(False)
        trainer.start_from(best)  # epochs must beat the solved ids to be kept
    unit = "users" if training.objective in USER_OBJECTIVES else "pairs"
    say(
        f"training on {train_loader.num_rows:,} {unit} per epoch ({len(train_loader):,} "
        f"batches), at most {training.epochs} epochs"
    )
    history = trainer.fit(train_loader, val_loader)
    kept = (
        "no epoch beat the least-squares ids, which are kept"
        if sweeps and trainer.best_epoch == 0
        else f"the best, epoch {trainer.best_epoch}, is kept"
    )
    why = trainer.stopped_because.replace("_", " ")
    say(f"stopped after {len(history)} epochs ({why}); {kept}")
    evaluation = evaluate_recommender(
        trainer.model, catalogue, split, config, baselines=baselines, seed=seed, report=say
    )
    return RecsysResult(
        trainer.model,
        catalogue,
        split,
        history,
        trainer.stopped_because,
        trainer.best_epoch,
        train_loader.label_distribution(),
        evaluation,
        sweeps,
    )


BYTES_PER_FLOAT = 4


def training_bytes(users: int, items: int, config: TwoTowerConfig) -> int:
    """About the most memory training takes beyond its data: per user and per item, the id
    tables and their least-squares solve (about four copies of the id and embedding widths)
    and the towers' activations when the whole catalogue is scored (twice the hidden widths).
    On 1 user x 100,000 items it reads 16 KB an item with the defaults (measured: 15 KB) and
    9 KB with id_dim 64 (measured: 8.6 KB)."""
    ids = config.id_dim if config.id_embeddings else 0
    width = 4 * (ids + config.embedding_dim) + 2 * sum(config.hidden_dims)
    return BYTES_PER_FLOAT * width * (users + items)


def check_memory(users: int, items: int, config: TwoTowerConfig) -> None:
    """Refuse, before any work, a catalogue whose training cannot fit in the memory this
    machine has left (``core.memory``), saying what would fit."""
    room = available_memory()
    needed = training_bytes(users, items, config)
    if room is None or needed <= room:
        return
    narrower = (
        width
        for width in (256, 128, 64, 32)
        if width < config.id_dim and config.id_embeddings
        if training_bytes(users, items, replace(config, id_dim=width)) <= room
    )
    width = next(narrower, None)
    advice = f"set id_dim to {width}" if width else "train on fewer items and users"
    raise TrainingError(
        f"Training on {users:,} users and {items:,} items needs about {needed / 1024**3:.1f} GB "
        f"of memory and {room / 1024**3:.1f} GB is available here: {advice}, or train on a "
        "machine with more memory."
    )


def _loaders(
    catalogue: Catalogue,
    split: Split,
    config: TwoTowerConfig,
    training: RecsysTrainingConfig,
) -> tuple[UserBatches | PairBatches, UserBatches | PairBatches]:
    """Training and validation batches for the objective: users with held-out items
    (masked_softmax) or labelled pairs with sampled negatives (the others)."""
    train_history = catalogue.history(split.train)
    seed = training.seed
    if training.objective in USER_OBJECTIVES:
        val = catalogue.history(split.val).matrix
        common = {"seed": seed, "softmax_items": training.softmax_items}
        return (
            UserBatches(
                catalogue,
                train_history,
                batch_size=training.batch_size,
                mask_share=training.mask_share,
                max_history=config.max_history,
                **common,
            ),
            UserBatches(catalogue, train_history, batch_size=1024, targets=val, **common),
        )
    events = labelled(split.train)
    counts = events.groupby("user_id")["item_id"].transform("size")
    events = events[counts >= training.min_interactions]
    pairs = {"max_history": config.max_history}
    return (
        PairBatches(
            catalogue,
            train_history,
            events,
            catalogue.matrix(split.train),
            negatives_per_positive=training.negatives_per_positive,
            batch_size=training.batch_size,
            shuffle=True,
            resample=True,
            seed=seed,
            **pairs,
        ),
        PairBatches(
            catalogue,
            train_history,
            labelled(split.val),
            catalogue.matrix(pd.concat([split.train, split.val])),
            negatives_per_positive=2,
            batch_size=4096,
            shuffle=False,
            resample=False,
            seed=seed + 1,
            **pairs,
        ),
    )
