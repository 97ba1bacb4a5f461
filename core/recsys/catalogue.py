"""What every recommender engine reads: the users and items with their encoded profile
features and index maps (``Catalogue``), and users' histories as sparse matrices
(``History``).

The user tower reads the user's profile and their history: the items they interacted with
positively before, as the mean of those items' profile features, log1p of how many, and (with
ID embeddings) the bag of their ids. Nothing here holds a dense (users, items) array:
histories and masks are scipy CSR matrices.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import sparse

from core.recsys.baselines import interaction_matrix
from core.recsys.data import contains, labelled, seen_keys
from core.recsys.features import RecsysEncoder
from core.recsys.synthetic import RecsysData
from core.trainer import TrainingError


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

    def bag_batch(
        self, users: np.ndarray, items: np.ndarray, offsets: np.ndarray
    ) -> dict[str, torch.Tensor]:
        """What the user tower takes for ``users`` reading the given history bags (a flat
        list of item ids, each user's from ``offsets``) instead of their whole history."""
        sizes = np.diff(offsets, append=len(items))
        bags = sparse.csr_matrix(
            (np.ones(len(items), np.float32), items, np.append(offsets, len(items))),
            shape=(len(users), len(self.item_ids)),
        )
        mean = np.asarray(bags @ self.item_features) / np.maximum(sizes, 1)[:, None]
        dense = np.hstack([self.user_features[users], mean, np.log1p(sizes)[:, None]])
        return {
            "user": torch.from_numpy(dense.astype(np.float32)),
            "user_index": torch.from_numpy(np.asarray(users, dtype=np.int64)),
            "history": torch.from_numpy(np.asarray(items, dtype=np.int64)),
            "history_offsets": torch.from_numpy(np.asarray(offsets, dtype=np.int64)),
        }

    @property
    def user_input_dim(self) -> int:
        return self.user_features.shape[1] + self.item_features.shape[1] + 1
