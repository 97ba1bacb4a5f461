"""Training and validation batches of the two-tower recommender, assembled one batch at a
time from sparse histories (nothing holds every example at once):

- ``UserBatches`` (objective ``masked_softmax``): users, each with the items held out of the
  history the tower reads, scored against the whole catalogue or a corrected sample of it;
- ``PairBatches`` (``weighted_bce``, ``in_batch_softmax``): seed 004's (user, item, label,
  weight) pairs, a positive and its sampled negatives sharing one user input.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from scipy import sparse

from core.recsys.catalogue import Catalogue, History
from core.recsys.data import sample_negatives, seen_keys

INPUTS = ("user", "item", "user_index", "item_index", "history", "history_offsets", "pair_user")
"""The batch keys the trainer hands to ``TwoTowerRecommender.forward``, in order."""


class UserBatches:
    """Users in minibatches of ``batch_size``, each with what the user tower reads and the
    items it must find.

    Training (``targets`` None): every epoch each user's training items are split afresh, a
    random ``mask_share`` of them (at least one) held out as targets, the rest read (at most
    ``max_history``, a random draw). Validation (``targets`` given): the tower reads the
    whole ``history`` and the targets are the user's ``targets`` row, the same every pass.

    Candidates: the whole catalogue while it has at most ``softmax_items`` items (logQ 0);
    above that, ``softmax_items`` items drawn uniformly plus the batch's targets, each with
    log q = the log of its chance to be among them (uniform draw, or being some user's
    target with the share of training events ``popularity`` gives it). Read items among the
    candidates are masked by the loss (``core.recsys.model.MaskedSoftmaxLoss``).
    """

    def __init__(
        self,
        catalogue: Catalogue,
        history: History,
        *,
        batch_size: int,
        seed: int,
        targets: sparse.csr_matrix | None = None,
        mask_share: float = 0.3,
        max_history: int | None = None,
        softmax_items: int = 50_000,
    ) -> None:
        self.catalogue, self.history, self.targets = catalogue, history, targets
        self.batch_size, self.seed = batch_size, seed
        self.mask_share, self.max_history = mask_share, max_history
        self.softmax_items = softmax_items
        source = history.matrix if targets is None else targets
        self.users = np.flatnonzero(np.diff(source.indptr) > 0).astype(np.int64)
        self.rng = np.random.default_rng(seed)
        counts = np.asarray(history.matrix.sum(axis=0)).ravel() + 1.0
        self.popularity = counts / counts.sum()

    @property
    def num_rows(self) -> int:
        return len(self.users)

    def __len__(self) -> int:
        return math.ceil(len(self.users) / self.batch_size)

    def label_distribution(self) -> pd.DataFrame:
        """Held-out (label 1) and read items' shares of an epoch's training items."""
        items = float(self.history.matrix[self.users].nnz)
        held = max(len(self.users), round(self.mask_share * items))
        rows = np.array([held, max(items - held, 0)])
        return pd.DataFrame({"label": [1.0, 0.0], "rows": rows, "share": rows / max(items, 1)})

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        training = self.targets is None
        rng = self.rng if training else np.random.default_rng(self.seed)
        order = rng.permutation(self.users) if training else self.users
        for start in range(0, len(order), self.batch_size):
            yield self._batch(order[start : start + self.batch_size], rng, training)

    def _batch(
        self, users: np.ndarray, rng: np.random.Generator, training: bool
    ) -> dict[str, torch.Tensor]:
        items, rows = _rows(self.history.matrix, users)
        if training:
            held = rng.random(len(items)) < self.mask_share
            firsts = np.searchsorted(rows, np.arange(len(users)))
            without = np.bincount(rows[held], minlength=len(users)) == 0
            held[firsts[without]] = True  # every user keeps at least one target
            target_items, target_rows = items[held], rows[held]
            items, rows = items[~held], rows[~held]
            if self.max_history is not None:
                items, rows = _at_most(items, rows, self.max_history, rng)
        else:
            target_items, target_rows = _rows(self.targets, users)
        sizes = np.bincount(rows, minlength=len(users))
        offsets = (np.cumsum(sizes) - sizes).astype(np.int64)
        batch = self.catalogue.bag_batch(users, items, offsets)
        candidates, log_q = self._candidates(target_items, rng)
        position = np.searchsorted(candidates, items)
        among = position < len(candidates)
        among[among] = candidates[position[among]] == items[among]
        batch.update(
            {
                "item": torch.from_numpy(self.catalogue.item_features[candidates]),
                "item_index": torch.from_numpy(candidates),
                "pair_user": torch.zeros(0, dtype=torch.int64),
                "visible_rows": torch.from_numpy(rows[among]),
                "visible_cols": torch.from_numpy(position[among]),
                "target_rows": torch.from_numpy(target_rows),
                "target_cols": torch.from_numpy(np.searchsorted(candidates, target_items)),
                "log_q": torch.from_numpy(log_q),
            }
        )
        return batch

    def _candidates(
        self, targets: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted candidate item ids and their log inclusion probabilities."""
        size = len(self.catalogue.item_ids)
        if size <= self.softmax_items:
            return np.arange(size, dtype=np.int64), np.zeros(size, dtype=np.float32)
        drawn = rng.integers(size, size=self.softmax_items)
        candidates = np.unique(np.concatenate([drawn, targets])).astype(np.int64)
        uniform = -math.expm1(self.softmax_items * math.log1p(-1 / size))
        as_target = -np.expm1(len(targets) * np.log1p(-self.popularity[candidates]))
        chance = 1 - (1 - uniform) * (1 - as_target)
        return candidates, np.log(chance).astype(np.float32)


def _rows(matrix: sparse.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero columns of the users' rows as a flat list, and each one's batch row."""
    starts, ends = matrix.indptr[users], matrix.indptr[users + 1]
    lengths = ends - starts
    rows = np.repeat(np.arange(len(users)), lengths)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return matrix.indices[starts[rows] + within].astype(np.int64), rows.astype(np.int64)


def _at_most(
    items: np.ndarray, rows: np.ndarray, limit: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` items per row (a random draw where a row has more), rows sorted."""
    key = rows + rng.random(len(rows))  # random order within each row
    order = np.argsort(key, kind="stable")
    items, rows = items[order], rows[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    kept = rank < limit
    return items[kept], rows[kept]


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
