"""Training the two-tower recommender through ``core.trainer.Trainer``, and evaluating it
beside the baselines with full-catalogue ranking.

The user tower reads the user's profile and their history: the items they interacted with
positively before, as the mean of those items' profile features, log1p of how many, and (with
ID embeddings) the mean of their id embeddings. For a training pair whose item is itself in
that history, the item is taken out, so the tower never sees the answer. The history at
validation is the training interactions; at test, training plus validation; at serving,
everything known.

Nothing here holds a dense (users, items) or (items, items) array: histories and masks are
sparse (scipy CSR), pairs are index arrays turned into tensors one batch at a time, and the
evaluation ranks the full catalogue for a bounded block of users at a time
(``evaluation_block``).

Early stopping and the best checkpoint follow validation NDCG@10 over the full catalogue.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import sparse

from core.recsys.baselines import BPR, ContentModel, ItemKNN, Popularity, interaction_matrix
from core.recsys.config import RecsysTrainingConfig, TwoTowerConfig
from core.recsys.data import (
    RELEVANT_MIN_LABEL,
    Split,
    contains,
    labelled,
    sample_negatives,
    seen_keys,
    split_interactions,
)
from core.recsys.features import RecsysEncoder
from core.recsys.metrics import catalogue_coverage, ranking_metrics, top_k
from core.recsys.model import InBatchSoftmaxLoss, TwoTowerRecommender, WeightedBCELoss
from core.recsys.synthetic import RecsysData
from core.trainer import (
    Callback,
    Trainer,
    TrainingError,
    create_optimizer,
    create_scheduler,
    seed_everything,
)

K = 10
MODEL_NAME = "two_tower"
SCORE_CELLS = 1 << 24
"""Scores held at once when ranking the full catalogue (16M: 128 MB as float64): users are
ranked in blocks of ``evaluation_block`` rows."""
MAX_BLOCK_USERS = 1024


def evaluation_block(items: int) -> int:
    """Users ranked at once against ``items`` items: at most 1,024, fewer for big catalogues."""
    return max(1, min(MAX_BLOCK_USERS, SCORE_CELLS // max(items, 1)))


@dataclass
class History:
    """Users' positively labelled items (sparse CSR, users x items) with what the user tower
    reads from them: per user the sum of those items' features and their count."""

    matrix: sparse.csr_matrix
    sums: np.ndarray
    counts: np.ndarray

    @functools.cached_property
    def keys(self) -> np.ndarray:
        return seen_keys(self.matrix)

    def holds(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each (user, item) is in the history."""
        return contains(self.keys, users, items, self.matrix.shape[1])

    def draw(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One item of each user's history, uniformly; -1 for an empty history."""
        starts = self.matrix.indptr[users]
        lengths = self.matrix.indptr[users + 1] - starts
        picked = starts + (rng.random(len(users)) * lengths).astype(np.int64)
        return np.where(
            lengths > 0, self.matrix.indices[np.minimum(picked, self.matrix.nnz - 1)], -1
        )

    def bags(
        self,
        users: np.ndarray,
        leave_out: np.ndarray | None = None,
        limit: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The users' history item ids as one flat list and each user's offset in it (the
        inputs of an ``EmbeddingBag``), without each row's ``leave_out`` item. With ``limit``
        and ``rng``, a longer history is a random draw of ``limit`` of its items."""
        starts = self.matrix.indptr[users]
        lengths = self.matrix.indptr[users + 1] - starts
        take = lengths if limit is None or rng is None else np.minimum(lengths, limit)
        row = np.repeat(np.arange(len(users)), take)
        within = np.arange(len(row)) - np.repeat(np.cumsum(take) - take, take)
        if limit is not None and rng is not None:
            drawn = (rng.random(len(row)) * lengths[row]).astype(np.int64)
            within = np.where(lengths[row] > limit, drawn, within)
        items = self.matrix.indices[starts[row] + within]
        if leave_out is not None:
            kept = items != leave_out[row]
            items, row = items[kept], row[kept]
        sizes = np.bincount(row, minlength=len(users))
        return items.astype(np.int64), (np.cumsum(sizes) - sizes).astype(np.int64)


@dataclass
class Catalogue:
    """Users and items with their encoded profile features and index maps."""

    data: RecsysData
    encoder: RecsysEncoder
    user_ids: list[str]
    item_ids: list[str]
    user_features: np.ndarray
    item_features: np.ndarray

    @classmethod
    def build(cls, data: RecsysData, encoder: RecsysEncoder) -> Catalogue:
        users = data.users.reset_index(drop=True)
        items = data.items.reset_index(drop=True)
        catalogue = cls(
            data,
            encoder,
            users["user_id"].astype(str).tolist(),
            items["item_id"].astype(str).tolist(),
            encoder.users(users).astype(np.float32),
            encoder.items(items).astype(np.float32),
        )
        for side, values in (("user", catalogue.user_features), ("item", catalogue.item_features)):
            if not np.isfinite(values).all():
                column = int(np.flatnonzero(~np.isfinite(values).all(axis=0))[0])
                raise TrainingError(
                    f"The {side} profile features have NaN or inf in column {column}; "
                    "check the profile file."
                )
        return catalogue

    @functools.cached_property
    def user_index(self) -> pd.Index:
        return pd.Index(self.user_ids)

    @functools.cached_property
    def item_index(self) -> pd.Index:
        return pd.Index(self.item_ids)

    def codes(self, interactions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) index arrays of the interactions' rows."""
        return (
            self.user_index.get_indexer(interactions["user_id"]),
            self.item_index.get_indexer(interactions["item_id"]),
        )

    def matrix(self, interactions: pd.DataFrame) -> sparse.csr_matrix:
        """Binary sparse (users, items) matrix of the interactions, whatever their type."""
        return interaction_matrix(interactions, self.user_index, self.item_index)

    def history(self, interactions: pd.DataFrame) -> History:
        """The positively labelled interactions as the user tower reads them."""
        events = labelled(interactions)
        matrix = self.matrix(events[events["label"] > 0])
        return History(
            matrix,
            np.asarray(matrix @ self.item_features, dtype=np.float32),
            np.asarray(matrix.sum(axis=1), dtype=np.float32).ravel(),
        )

    def user_inputs(
        self, users: np.ndarray, history: History, leave_out: np.ndarray | None = None
    ) -> np.ndarray:
        """The user tower's dense inputs: profile, mean features of the history's items,
        log1p(count); with ``leave_out`` (one item per row) that item is taken out of the
        history where it is in it."""
        sums, counts = history.sums[users], history.counts[users]
        if leave_out is not None:
            held = history.holds(users, leave_out) & (leave_out >= 0)
            sums = sums - held[:, None] * self.item_features[leave_out]
            counts = counts - held
        mean = sums / np.maximum(counts, 1)[:, None]
        parts = [self.user_features[users], mean, np.log1p(counts)[:, None]]
        return np.hstack(parts).astype(np.float32)

    def user_batch(
        self,
        users: np.ndarray,
        history: History,
        leave_out: np.ndarray | None = None,
        limit: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Everything the user tower takes for ``users``: dense inputs, ids, history bags."""
        flat, offsets = history.bags(users, leave_out, limit, rng)
        return {
            "user": torch.from_numpy(self.user_inputs(users, history, leave_out)),
            "user_index": torch.from_numpy(np.asarray(users, dtype=np.int64)),
            "history": torch.from_numpy(flat),
            "history_offsets": torch.from_numpy(offsets),
        }

    @property
    def user_input_dim(self) -> int:
        return self.user_features.shape[1] + self.item_features.shape[1] + 1


INPUTS = ("user", "item", "user_index", "item_index", "history", "history_offsets", "pair_user")
"""The batch keys the trainer hands to ``TwoTowerRecommender.forward``, in order."""


class PairBatches:
    """(user, item, label, weight) training pairs in minibatches, assembled per batch.

    The labelled events are fixed; ``negatives_per_positive`` negatives per positive event
    are drawn from the items the user never met (``seen``): afresh every epoch when
    ``resample``, else once (the same every pass, for validation).

    A positive event and its negatives form a group that shares one user input, so the user
    tower runs once per group (``pair_user`` maps each pair to its group's row), and every
    pair of the group sees the history with the positive's item left out: the tower never
    sees the answer, and what it reads never tells a positive from a negative. Other events
    (dislikes) leave out a random one of the user's history items, for the same reason; a
    history one item short only for positives would be a shortcut that fails at serving.
    History bags hold at most ``max_history`` items (a random draw per group and epoch).
    Groups are shuffled whole; a batch holds ``batch_size`` pairs.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        history: History,
        events: pd.DataFrame,
        seen: sparse.csr_matrix,
        *,
        negatives_per_positive: int,
        batch_size: int,
        shuffle: bool,
        resample: bool,
        seed: int,
        max_history: int | None,
    ) -> None:
        self.catalogue, self.history = catalogue, history
        users, items = catalogue.codes(events)
        self.users, self.items = users.astype(np.int64), items.astype(np.int64)
        self.labels = events["label"].to_numpy(dtype=np.float32)
        self.weights = events["weight"].to_numpy(dtype=np.float32)
        self.seen, self.seen_keys = seen, seen_keys(seen)
        self.positive = self.labels > 0
        self.per_event = np.where(self.positive, negatives_per_positive, 0)
        self.wanted = np.repeat(self.users, self.per_event)
        self.batch_size, self.shuffle, self.resample = batch_size, shuffle, resample
        self.max_history, self.seed = max_history, seed
        self.rng = np.random.default_rng(seed)
        self.negatives = self._draw(np.random.default_rng(seed + 1))

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        return sample_negatives(self.wanted, self.seen, rng, self.seen_keys)

    @property
    def num_rows(self) -> int:
        return len(self.users) + int((self.negatives >= 0).sum())

    def __len__(self) -> int:
        return math.ceil(self.num_rows / self.batch_size)

    def label_distribution(self) -> pd.DataFrame:
        """Rows per label with their share, highest label first (the seed's printout)."""
        labels = np.concatenate([self.labels, np.zeros(int((self.negatives >= 0).sum()))])
        counts = pd.Series(np.round(labels, 6)).value_counts().sort_index(ascending=False)
        return pd.DataFrame(
            {
                "label": counts.index.to_numpy(dtype=float),
                "rows": counts.to_numpy(),
                "share": counts.to_numpy() / len(labels),
            }
        )

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = self.rng if self.resample else np.random.default_rng(self.seed)
        negatives = self._draw(rng) if self.resample else self.negatives
        drawn = negatives >= 0
        # pairs in group order: each event, then the negatives drawn for it
        group = np.concatenate(
            [
                np.arange(len(self.users)),
                np.repeat(np.arange(len(self.users)), self.per_event)[drawn],
            ]
        )
        order = np.argsort(group, kind="stable")
        group = group[order]
        items = np.concatenate([self.items, negatives[drawn]])[order]
        labels = np.concatenate([self.labels, np.zeros(int(drawn.sum()), np.float32)])[order]
        weights = np.concatenate([self.weights, np.ones(int(drawn.sum()), np.float32)])[order]
        left_out = np.where(self.positive, self.items, self.history.draw(self.users, rng))
        if self.shuffle:  # whole groups in a random order
            rank = rng.permutation(len(self.users))[group]
            order = np.argsort(rank, kind="stable")
            group, items, labels, weights = (
                group[order],
                items[order],
                labels[order],
                weights[order],
            )
        for start in range(0, len(group), self.batch_size):
            rows = slice(start, start + self.batch_size)
            groups, pair_user = np.unique(group[rows], return_inverse=True)
            batch = {
                "label": torch.from_numpy(labels[rows]),
                "weight": torch.from_numpy(weights[rows]),
                "item": torch.from_numpy(self.catalogue.item_features[items[rows]]),
                "item_index": torch.from_numpy(items[rows]),
                "pair_user": torch.from_numpy(pair_user.astype(np.int64)),
            }
            batch.update(
                self.catalogue.user_batch(
                    self.users[groups], self.history, left_out[groups], self.max_history, rng
                )
            )
            yield batch


class TowerScorer:
    """Scores of the two-tower model for blocks of users against every item; the item
    embeddings are computed once."""

    def __init__(self, model: TwoTowerRecommender, catalogue: Catalogue, history: History):
        self.model, self.catalogue, self.history = model, catalogue, history
        self.items = item_embeddings(model, catalogue)

    @torch.no_grad()
    def __call__(self, users: np.ndarray) -> np.ndarray:
        return user_embeddings(self.model, self.catalogue, self.history, users) @ self.items.T


@torch.no_grad()
def item_embeddings(
    model: TwoTowerRecommender, catalogue: Catalogue, block: int = 65536
) -> np.ndarray:
    """(items, E) embeddings of the whole catalogue, computed in blocks."""
    model.eval()
    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(catalogue.item_ids), block):
        index = torch.arange(start, min(start + block, len(catalogue.item_ids)))
        features = torch.from_numpy(catalogue.item_features[index.numpy()])
        parts.append(model.items(features.to(device), index.to(device)).cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, model.output_dim), dtype=np.float32)


@torch.no_grad()
def user_embeddings(
    model: TwoTowerRecommender, catalogue: Catalogue, history: History, users: np.ndarray
) -> np.ndarray:
    """(len(users), E) embeddings from the users' whole histories."""
    model.eval()
    device = next(model.parameters()).device
    batch = catalogue.user_batch(np.asarray(users, dtype=np.int64), history)
    inputs = [batch[key].to(device) for key in ("user", "user_index", "history", "history_offsets")]
    return model.users(*inputs).cpu().numpy()


def tower_scores(
    model: TwoTowerRecommender, catalogue: Catalogue, users: np.ndarray, history: History
) -> np.ndarray:
    """(users, items) logits: user embeddings against every item embedding."""
    return TowerScorer(model, catalogue, history)(users)


class Segment:
    """One evaluation segment prepared once: the users to rank for, the items relevant to
    each (label of at least ``RELEVANT_MIN_LABEL``), and the items to mask (seen before)."""

    def __init__(
        self,
        catalogue: Catalogue,
        segment: pd.DataFrame,
        seen: pd.DataFrame | sparse.csr_matrix,
        *,
        users: set[str] | None = None,
    ) -> None:
        self.catalogue = catalogue
        active = set(segment["user_id"]) if users is None else set(segment["user_id"]) & users
        self.rows = np.sort(catalogue.user_index.get_indexer(sorted(active))).astype(np.int64)
        events = labelled(segment)
        events = events[events["label"] >= RELEVANT_MIN_LABEL]
        user, item = catalogue.codes(events)
        relevant: dict[int, set[int]] = {}
        for u, i in zip(user.tolist(), item.tolist(), strict=True):
            relevant.setdefault(u, set()).add(i)
        self.relevant = [relevant.get(int(u), set()) for u in self.rows]
        self.seen = seen if sparse.issparse(seen) else catalogue.matrix(seen)

    def metrics(self, scorer: Callable[[np.ndarray], np.ndarray], k: int = K) -> dict[str, float]:
        """Ranking metrics of ``scorer``: full ranking, seen items masked, in user blocks."""
        if len(self.rows) == 0:
            return {f"ndcg@{k}": 0.0, "users_evaluated": 0.0, "users_skipped": 0.0}
        block = evaluation_block(len(self.catalogue.item_ids))
        ranked = []
        for start in range(0, len(self.rows), block):
            rows = self.rows[start : start + block]
            exclude = self.seen[rows].toarray() > 0  # (block, items)
            ranked.append(top_k(scorer(rows), k, exclude))
        ranked = np.concatenate(ranked)
        result = ranking_metrics(ranked, self.relevant, k)
        result[f"coverage@{k}"] = catalogue_coverage(ranked, len(self.catalogue.item_ids))
        return result


def rank_segment(
    catalogue: Catalogue,
    scorer: Callable[[np.ndarray], np.ndarray],
    segment: pd.DataFrame,
    seen: pd.DataFrame | sparse.csr_matrix,
    *,
    users: set[str] | None = None,
    k: int = K,
) -> dict[str, float]:
    """Ranking metrics of ``scorer`` on the users active in ``segment`` (optionally only
    ``users``): full ranking, items in ``seen`` excluded, relevance from ``segment``."""
    return Segment(catalogue, segment, seen, users=users).metrics(scorer, k)


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


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch's intra-op threads set to ``count`` inside the block (0: left as they are)."""
    before = torch.get_num_threads()
    if count > 0:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    seed = training.seed
    seed_everything(seed)
    split = split_interactions(data.interactions, by=training.split, seed=seed)
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
    events = labelled(split.train)
    counts = events.groupby("user_id")["item_id"].transform("size")
    events = events[counts >= training.min_interactions]
    train_loader = PairBatches(
        catalogue,
        train_history,
        events,
        train_seen,
        negatives_per_positive=training.negatives_per_positive,
        batch_size=training.batch_size,
        shuffle=True,
        resample=True,
        seed=seed,
        max_history=config.max_history,
    )
    val_loader = PairBatches(
        catalogue,
        train_history,
        labelled(split.val),
        catalogue.matrix(pd.concat([split.train, split.val])),
        negatives_per_positive=2,
        batch_size=4096,
        shuffle=False,
        resample=False,
        seed=seed + 1,
        max_history=config.max_history,
    )
    model = TwoTowerRecommender(
        config,
        catalogue.user_input_dim,
        catalogue.item_features.shape[1],
        len(catalogue.user_ids),
        len(catalogue.item_ids),
    )
    if training.objective == "in_batch_softmax":
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
    say(
        f"training on {train_loader.num_rows:,} pairs per epoch ({len(train_loader):,} "
        f"batches), at most {training.epochs} epochs"
    )
    history = trainer.fit(train_loader, val_loader)
    say(
        f"stopped after {len(history)} epochs ({trainer.stopped_because.replace('_', ' ')}); "
        f"the best, epoch {trainer.best_epoch}, is kept"
    )
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
    )


def evaluate_recommender(
    model: TwoTowerRecommender,
    catalogue: Catalogue,
    split: Split,
    config: TwoTowerConfig,
    *,
    baselines: bool = True,
    seed: int = 0,
    report: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Test metrics of the two-tower model and the baselines: all users, and cold users
    (fewer than ``cold_max_interactions`` events before the test period) on their own."""
    say = report or (lambda _: None)
    before = pd.concat([split.train, split.val], ignore_index=True)
    history = catalogue.history(before)
    engines: dict[str, Callable[[], Callable[[np.ndarray], np.ndarray]]] = {
        "two_tower": lambda: TowerScorer(model, catalogue, history)
    }
    if baselines:
        users = catalogue.data.users.reset_index(drop=True)

        def content() -> Callable[[np.ndarray], np.ndarray]:
            engine = ContentModel(catalogue.encoder, catalogue.data.items)
            return lambda rows: engine.scores(users.iloc[rows], history.matrix[rows])

        engines.update(
            {
                "popularity": lambda: Popularity(history.matrix).scores,
                "item_knn": lambda: ItemKNN(history.matrix).scores,
                "content": content,
                "bpr": lambda: BPR(history.matrix, seed=seed).scores,
            }
        )
    counts = before.groupby("user_id").size()
    cold = {u for u in catalogue.user_ids if counts.get(u, 0) < config.cold_max_interactions}
    seen = catalogue.matrix(before)
    everyone = Segment(catalogue, split.test, seen)
    cold_users = Segment(catalogue, split.test, seen, users=cold)
    all_users, cold_figures = {}, {}
    for name, build in engines.items():
        say(f"evaluating {name} on {len(everyone.rows):,} test users")
        scorer = build()
        all_users[name] = everyone.metrics(scorer)
        cold_figures[name] = cold_users.metrics(scorer)
    return {
        "k": K,
        "test_interactions": len(split.test),
        "all_users": all_users,
        "cold_users": cold_figures,
    }
