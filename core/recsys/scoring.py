"""The two-tower model's embeddings and scores for blocks of users against the whole
catalogue (item embeddings computed once, in blocks)."""

from __future__ import annotations

import numpy as np
import torch

from core.recsys.catalogue import Catalogue, History
from core.recsys.model import TwoTowerRecommender


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
