"""Training the two-tower recommender through ``core.trainer.Trainer``, and evaluating it
beside the baselines with full-catalogue ranking.

The user tower reads the user's profile and their history: the mean feature vector of the
items they interacted with positively before (and log1p of how many). For a training pair
whose item is itself in that history, the item is taken out of the mean, so the tower never
sees the answer. The history at validation is the training interactions; at test, training
plus validation; at serving, everything known.

Early stopping and the best checkpoint follow validation NDCG@10 over the full catalogue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.batches import TensorBatches
from core.recsys.baselines import BPR, ContentModel, ItemKNN, Popularity, interaction_matrix
from core.recsys.config import RecsysTrainingConfig, TwoTowerConfig
from core.recsys.data import (
    Split,
    label_distribution,
    labelled,
    relevant_items,
    split_interactions,
    training_pairs,
)
from core.recsys.features import RecsysEncoder
from core.recsys.metrics import catalogue_coverage, ranking_metrics, top_k
from core.recsys.model import InBatchSoftmaxLoss, TwoTowerRecommender, WeightedBCELoss
from core.recsys.synthetic import RecsysData
from core.trainer import Callback, Trainer, create_optimizer, create_scheduler, seed_everything

K = 10
MODEL_NAME = "two_tower"


@dataclass
class Catalogue:
    """Users and items with their encoded features and index maps."""

    data: RecsysData
    encoder: RecsysEncoder
    user_ids: list[str]
    item_ids: list[str]
    user_features: np.ndarray
    item_features: np.ndarray
    id_features: bool

    @classmethod
    def build(cls, data: RecsysData, encoder: RecsysEncoder, id_features: bool) -> Catalogue:
        users = data.users.reset_index(drop=True)
        items = data.items.reset_index(drop=True)
        item_features = encoder.items(items)
        if id_features:  # one-hot identity: lets the item tower learn what features miss
            item_features = np.hstack([item_features, np.eye(len(items), dtype=np.float32)])
        return cls(
            data,
            encoder,
            users["user_id"].astype(str).tolist(),
            items["item_id"].astype(str).tolist(),
            encoder.users(users),
            item_features,
            id_features,
        )

    @property
    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids)}

    @property
    def item_index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}

    def history(self, interactions: pd.DataFrame) -> np.ndarray:
        """Binary (users, items) matrix of positively labelled interactions."""
        events = labelled(interactions)
        return interaction_matrix(events[events["label"] > 0], self.user_index, self.item_index)

    def user_inputs(
        self, users: np.ndarray, history: np.ndarray, leave_out: np.ndarray | None = None
    ) -> np.ndarray:
        """User tower inputs: profile, mean features of history items, log1p(count); with
        ``leave_out`` (one item per row, -1 for none) that item is removed from the history."""
        rows = history[users].copy()
        if leave_out is not None:
            held = leave_out >= 0
            rows[np.flatnonzero(held), leave_out[held]] = 0.0
        counts = rows.sum(axis=1, keepdims=True)
        mean = rows @ self.item_features / np.maximum(counts, 1)
        parts = [self.user_features[users], mean, np.log1p(counts)]
        return np.hstack(parts).astype(np.float32)

    @property
    def user_input_dim(self) -> int:
        return self.user_features.shape[1] + self.item_features.shape[1] + 1


def pair_batches(
    catalogue: Catalogue,
    pairs: pd.DataFrame,
    history: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
) -> TensorBatches:
    users = pairs["user_id"].map(catalogue.user_index).to_numpy()
    items = pairs["item_id"].map(catalogue.item_index).to_numpy()
    in_history = history[users, items] > 0
    tensors = {
        "user": torch.from_numpy(
            catalogue.user_inputs(users, history, np.where(in_history, items, -1))
        ),
        "item": torch.from_numpy(catalogue.item_features[items]),
        "item_index": torch.from_numpy(np.array(items)),
        "label": torch.tensor(pairs["label"].to_numpy(), dtype=torch.float32),
        "weight": torch.tensor(pairs["weight"].to_numpy(), dtype=torch.float32),
    }
    return TensorBatches(
        tensors,
        meta=pairs[["user_id", "item_id"]],
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        standardizer=None,
    )


@torch.no_grad()
def tower_scores(
    model: TwoTowerRecommender, catalogue: Catalogue, users: np.ndarray, history: np.ndarray
) -> np.ndarray:
    """(users, items) logits: user embeddings against every item embedding."""
    model.eval()
    device = next(model.parameters()).device
    user_embedding = model.user_tower(
        torch.from_numpy(catalogue.user_inputs(users, history)).to(device)
    )
    item_embedding = model.item_tower(torch.from_numpy(catalogue.item_features).to(device))
    return (user_embedding @ item_embedding.T).cpu().numpy()


def rank_segment(
    catalogue: Catalogue,
    scorer: Callable[[np.ndarray], np.ndarray],
    segment: pd.DataFrame,
    seen: pd.DataFrame,
    *,
    users: set[str] | None = None,
    k: int = K,
) -> dict[str, float]:
    """Ranking metrics of ``scorer`` on the users active in ``segment`` (optionally only
    ``users``): full ranking, items in ``seen`` excluded, relevance from ``segment``."""
    active = sorted(set(segment["user_id"]) if users is None else set(segment["user_id"]) & users)
    relevant = relevant_items(segment)
    index = catalogue.user_index
    rows = np.array([index[u] for u in active], dtype=int)
    if len(rows) == 0:
        return {f"ndcg@{k}": 0.0, "users_evaluated": 0.0, "users_skipped": 0.0}
    exclude = interaction_matrix(seen, index, catalogue.item_index)[rows] > 0
    ranked = top_k(scorer(rows), k, exclude)
    item_index = catalogue.item_index
    wanted = [{item_index[i] for i in relevant.get(u, set())} for u in active]
    result = ranking_metrics(ranked, wanted, k)
    result[f"coverage@{k}"] = catalogue_coverage(ranked, len(catalogue.item_ids))
    return result


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
) -> RecsysResult:
    config = config or TwoTowerConfig()
    training = training or RecsysTrainingConfig()
    seed = training.seed
    seed_everything(seed)
    split = split_interactions(data.interactions, by=training.split)
    encoder = RecsysEncoder.fit(
        data.users,
        data.items,
        seed=seed,
        text_backend=config.text_backend,
        sentence_model_path=config.sentence_model_path,
    )
    catalogue = Catalogue.build(data, encoder, config.id_features)
    train_history = catalogue.history(split.train)
    pairs = training_pairs(
        split.train,
        catalogue.item_ids,
        negatives_per_positive=training.negatives_per_positive,
        min_interactions=training.min_interactions,
        seed=seed,
    )
    val_pairs = training_pairs(split.val, catalogue.item_ids, seed=seed + 1)
    train_loader = pair_batches(
        catalogue,
        pairs,
        train_history,
        batch_size=training.batch_size,
        shuffle=True,
        seed=seed,
    )
    val_loader = pair_batches(
        catalogue, val_pairs, train_history, batch_size=4096, shuffle=False, seed=seed
    )
    model = TwoTowerRecommender(config, catalogue.user_input_dim, catalogue.item_features.shape[1])
    if training.objective == "in_batch_softmax":
        positives = pairs[pairs["label"] > 0]["item_id"].map(catalogue.item_index)
        share = np.bincount(positives, minlength=len(catalogue.item_ids)) + 1.0
        loss = InBatchSoftmaxLoss(torch.log(torch.tensor(share / share.sum(), dtype=torch.float32)))
    else:
        loss = WeightedBCELoss()
    optimizer = create_optimizer(model, training.optimizer)
    scheduler = create_scheduler(optimizer, training.scheduler, training.epochs)

    def validate(network: torch.nn.Module) -> dict[str, float]:
        scores = lambda rows: tower_scores(network, catalogue, rows, train_history)  # noqa: E731
        figures = rank_segment(catalogue, scores, split.val, split.train)
        return {name: value for name, value in figures.items() if "@" in name}

    trainer = Trainer(
        model,
        loss.to(device or "cpu"),
        optimizer,
        scheduler,
        inputs=("user", "item"),
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
        },
        should_stop=should_stop,
        validate=validate,
        monitor=f"val/ndcg@{K}",
        maximize=True,
    )
    history = trainer.fit(train_loader, val_loader)
    evaluation = evaluate_recommender(
        trainer.model, catalogue, split, config, baselines=baselines, seed=seed
    )
    return RecsysResult(
        trainer.model,
        catalogue,
        split,
        history,
        trainer.stopped_because,
        trainer.best_epoch,
        label_distribution(pairs),
        evaluation,
    )


def evaluate_recommender(
    model: TwoTowerRecommender,
    catalogue: Catalogue,
    split: Split,
    config: TwoTowerConfig,
    *,
    baselines: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Test metrics of the two-tower model and the baselines: all users, and cold users
    (fewer than ``cold_max_interactions`` events before the test period) on their own."""
    before = pd.concat([split.train, split.val], ignore_index=True)
    history = catalogue.history(before)
    engines: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "two_tower": lambda rows: tower_scores(model, catalogue, rows, history)
    }
    if baselines:
        seen = interaction_matrix(before, catalogue.user_index, catalogue.item_index)
        popularity = Popularity(history)
        knn = ItemKNN(seen)
        content = ContentModel(catalogue.encoder, catalogue.data.items)
        users = catalogue.data.users.reset_index(drop=True)
        bpr = BPR(seen, seed=seed)
        engines.update(
            {
                "popularity": popularity.scores,
                "item_knn": knn.scores,
                "content": lambda rows: content.scores(users.iloc[rows], history[rows]),
                "bpr": bpr.scores,
            }
        )
    counts = before.groupby("user_id").size()
    cold = {u for u in catalogue.user_ids if counts.get(u, 0) < config.cold_max_interactions}
    return {
        "k": K,
        "test_interactions": len(split.test),
        "all_users": {
            n: rank_segment(catalogue, f, split.test, before) for n, f in engines.items()
        },
        "cold_users": {
            n: rank_segment(catalogue, f, split.test, before, users=cold)
            for n, f in engines.items()
        },
    }
