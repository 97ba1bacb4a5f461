"""Recommenders the two-tower model is measured against, and the content engine it falls back
to. Each scores every item for some users: ``scores(user_indices) -> (users, items)``.

- popularity: the item's count of relevant training interactions (the same for everyone);
- item-kNN: cosine similarity between items' columns of the binary user x item matrix of
  training interactions, each item keeping its 50 nearest neighbours; a user's score for an
  item is the summed similarity to the items they interacted with;
- content: the user's words (bio, plus the descriptions of items they liked) against each
  item's description in the shared TF-IDF space, plus the overlap of matching fields (the
  user's skills covering the item's, stated interests naming its sector, same location);
- BPR: matrix factorisation (32 factors) trained with the Bayesian personalised ranking loss
  on (user, interacted item, random other item) triples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from core.recsys.features import RecsysEncoder, split_values


def interaction_matrix(
    pairs: pd.DataFrame, user_index: dict[str, int], item_index: dict[str, int]
) -> np.ndarray:
    """Binary (users, items) matrix of the given (user_id, item_id) rows."""
    matrix = np.zeros((len(user_index), len(item_index)), dtype=np.float32)
    rows = pairs["user_id"].map(user_index).to_numpy()
    columns = pairs["item_id"].map(item_index).to_numpy()
    matrix[rows, columns] = 1.0
    return matrix


class Popularity:
    def __init__(self, matrix: np.ndarray) -> None:
        self.counts = matrix.sum(axis=0)

    def scores(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.counts, (len(users), 1))


class ItemKNN:
    def __init__(self, matrix: np.ndarray, neighbours: int = 50) -> None:
        norms = np.linalg.norm(matrix, axis=0)
        similarity = (matrix.T @ matrix) / np.maximum(np.outer(norms, norms), 1e-12)
        np.fill_diagonal(similarity, 0.0)
        if neighbours < similarity.shape[1]:
            weakest = np.argsort(-similarity, axis=1)[:, neighbours:]
            np.put_along_axis(similarity, weakest, 0.0, axis=1)
        self.matrix, self.similarity = matrix, similarity

    def scores(self, users: np.ndarray) -> np.ndarray:
        return self.matrix[users] @ self.similarity.T


class ContentModel:
    """Content-based scores and the reasons behind them (the cold-start engine)."""

    def __init__(self, encoder: RecsysEncoder, items: pd.DataFrame) -> None:
        self.encoder, self.items = encoder, items.reset_index(drop=True)
        self.item_text = encoder.text_vectors(self.items, "item")
        self.matches = encoder.matching_fields()
        self.item_values = {
            column: [set(split_values(v)) for v in self.items[column]] for _, column in self.matches
        }

    def profile_text(self, users: pd.DataFrame, history: np.ndarray | None) -> np.ndarray:
        """Each user's words, blended with the mean of liked items' descriptions."""
        text = self.encoder.text_vectors(users, "user")
        if history is not None and text.shape[1]:
            counts = history.sum(axis=1, keepdims=True)
            liked = history @ self.item_text / np.maximum(counts, 1)
            text = np.where(counts > 0, 0.5 * text + 0.5 * liked, text)
            text /= np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
        return text

    def scores(self, users: pd.DataFrame, history: np.ndarray | None = None) -> np.ndarray:
        """(users, items): text cosine + for each matching field pair the share of the item's
        values that the user has."""
        scores = self.profile_text(users, history) @ self.item_text.T
        for user_column, item_column in self.matches:
            for row, cell in enumerate(users[user_column]):
                mine = set(split_values(cell))
                if mine:
                    scores[row] += [
                        len(mine & theirs) / len(theirs) if theirs else 0.0
                        for theirs in self.item_values[item_column]
                    ]
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


class BPR:
    """Matrix factorisation trained with the BPR pairwise loss (Rendle et al., 2009)."""

    def __init__(
        self,
        matrix: np.ndarray,
        *,
        factors: int = 32,
        epochs: int = 40,
        learning_rate: float = 0.05,
        regularisation: float = 1e-4,
        seed: int = 0,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        users, items = matrix.shape
        self.user_factors = torch.nn.Parameter(
            torch.randn(users, factors, generator=generator) * 0.1
        )
        self.item_factors = torch.nn.Parameter(
            torch.randn(items, factors, generator=generator) * 0.1
        )
        optimizer = torch.optim.Adam([self.user_factors, self.item_factors], lr=learning_rate)
        user_ids, item_ids = (torch.from_numpy(a) for a in np.nonzero(matrix))
        seen = torch.from_numpy(matrix > 0)
        for _ in range(epochs):
            order = torch.randperm(len(user_ids), generator=generator)
            for start in range(0, len(order), 1024):
                batch = order[start : start + 1024]
                u, positive = user_ids[batch], item_ids[batch]
                negative = torch.randint(items, (len(batch),), generator=generator)
                keep = ~seen[u, negative]
                u, positive, negative = u[keep], positive[keep], negative[keep]
                difference = (
                    self.user_factors[u]
                    * (self.item_factors[positive] - self.item_factors[negative])
                ).sum(-1)
                loss = -torch.nn.functional.logsigmoid(difference).mean() + regularisation * (
                    self.user_factors[u].pow(2).sum() + self.item_factors[positive].pow(2).sum()
                ) / len(u)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    @torch.no_grad()
    def scores(self, users: np.ndarray) -> np.ndarray:
        return (self.user_factors[torch.as_tensor(users)] @ self.item_factors.T).numpy()
