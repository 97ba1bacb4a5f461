"""The content-based engine: a user's words and stated preferences against each item's
description and fields, with the reasons behind each score (the cold-start engine, and one of
the baselines).

- text: the user's words (bio, plus the descriptions of items they liked) against each item's
  description in the encoder's shared TF-IDF space;
- fields: the overlap of matching fields (the user's skills covering the item's, stated
  interests naming its sector, same location).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from core.recsys.features import RecsysEncoder, split_values


class ContentModel:
    """Content-based scores and the reasons behind them (the cold-start engine)."""

    def __init__(self, encoder: RecsysEncoder, items: pd.DataFrame) -> None:
        self.encoder, self.items = encoder, items.reset_index(drop=True)
        self.item_text = encoder.text_vectors(self.items, "item")
        self.matches = encoder.matching_fields()
        self.item_values = {
            column: [set(split_values(v)) for v in self.items[column]] for _, column in self.matches
        }
        self.item_sets = {
            column: self._multi_hot(self.item_values[column], self._vocabulary(column))
            for _, column in self.matches
        }

    def _vocabulary(self, item_column: str) -> dict[str, int]:
        values = sorted({v for cell in self.item_values[item_column] for v in cell})
        return {value: i for i, value in enumerate(values)}

    @staticmethod
    def _multi_hot(cells: list[set[str]], vocabulary: dict[str, int]) -> sparse.csr_matrix:
        pairs = [
            (row, vocabulary[value])
            for row, cell in enumerate(cells)
            for value in cell
            if value in vocabulary
        ]
        rows = [row for row, _ in pairs]
        columns = [column for _, column in pairs]
        return sparse.csr_matrix(
            (np.ones(len(pairs), dtype=np.float32), (rows, columns)),
            shape=(len(cells), len(vocabulary)),
        )

    def profile_text(self, users: pd.DataFrame, history: sparse.csr_matrix | None) -> np.ndarray:
        """Each user's words, blended with the mean of liked items' descriptions (only the
        latter when users write nothing)."""
        own = self.encoder.text_vectors(users, "user")
        if not self.item_text.shape[1]:
            return np.zeros((len(users), 0), dtype=np.float32)
        if own.shape[1] != self.item_text.shape[1]:
            own = np.zeros((len(users), self.item_text.shape[1]), dtype=np.float32)
        if history is None:
            return own
        counts = np.asarray(history.sum(axis=1)).reshape(-1, 1)
        liked = np.asarray(history @ self.item_text) / np.maximum(counts, 1)
        written = np.linalg.norm(own, axis=1, keepdims=True) > 0
        text = np.where(counts > 0, np.where(written, 0.5 * own + 0.5 * liked, liked), own)
        return text / np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)

    def scores(self, users: pd.DataFrame, history: sparse.csr_matrix | None = None) -> np.ndarray:
        """(users, items): text cosine + for each matching field pair the share of the item's
        values that the user has."""
        text = self.profile_text(users, history)
        scores = (
            text @ self.item_text.T
            if text.shape[1]
            else np.zeros((len(users), len(self.items)), dtype=np.float32)
        )
        for user_column, item_column in self.matches:
            vocabulary = self._vocabulary(item_column)
            mine = self._multi_hot([set(split_values(v)) for v in users[user_column]], vocabulary)
            item_sets = self.item_sets[item_column]
            sizes = np.asarray(item_sets.sum(axis=1)).ravel()
            shared = np.asarray((mine @ item_sets.T).toarray())
            scores = scores + shared / np.maximum(sizes, 1)[None, :]
        return scores

    def reasons(self, user: pd.Series, item: int) -> str:
        """What the user's profile shares with the item, e.g. 'skills: go, python'."""
        parts = []
        for user_column, item_column in self.matches:
            shared = set(split_values(user[user_column])) & self.item_values[item_column][item]
            if shared:
                label = (
                    item_column if user_column == item_column else f"{item_column} in {user_column}"
                )
                parts.append(f"{label}: {', '.join(sorted(shared))}")
        return "; ".join(parts) or "similar description"
