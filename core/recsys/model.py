"""The two-tower recommender (seed 004) and its two training objectives.

User and item features each pass an MLP tower ([512, 256] by default; dropout 0.3 after the
first layer, 0.2 after later ones) to a 128-d embedding; the score is sigmoid(<u, i>).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from core.recsys.config import TwoTowerConfig


def _tower(input_dim: int, config: TwoTowerConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = input_dim
    for index, hidden in enumerate(config.hidden_dims):
        dropout = config.first_dropout if index == 0 else config.dropout
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, config.embedding_dim))
    return nn.Sequential(*layers)


class TwoTowerRecommender(nn.Module):
    def __init__(self, config: TwoTowerConfig, user_dim: int, item_dim: int) -> None:
        super().__init__()
        self.config = config
        self.user_dim, self.item_dim = user_dim, item_dim
        self.user_tower = _tower(user_dim, config)
        self.item_tower = _tower(item_dim, config)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, Du), (B, Di) -> logit and score (B,), embeddings (B, E)."""
        user_embedding, item_embedding = self.user_tower(user), self.item_tower(item)
        logit = (user_embedding * item_embedding).sum(-1)
        return {
            "logit": logit,
            "score": torch.sigmoid(logit),
            "user_embedding": user_embedding,
            "item_embedding": item_embedding,
        }


class WeightedBCELoss(nn.Module):
    """Pointwise BCE on soft labels, each pair weighted by |weight| (seed 004)."""

    def forward(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        per_pair = F.binary_cross_entropy_with_logits(
            outputs["logit"], batch["label"], reduction="none"
        )
        weight = batch["weight"].abs()
        loss = (per_pair * weight).sum() / weight.sum().clamp_min(1e-12)
        return loss, {"total": loss.item(), "bce": loss.item()}


class InBatchSoftmaxLoss(nn.Module):
    """Sampled softmax over the batch's items, with the logQ correction.

    Each positive pair (label > 0) scores its item against every item in the batch; the
    logits subtract log q(item), the item's share of training positives, because popular
    items appear as in-batch negatives more often than uniform sampling would show them.
    Without the correction the model learns to push popular items down (Yi et al., 2019).
    Pairs with label 0 only serve as other rows' negatives.
    """

    def __init__(self, log_q: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("log_q", log_q)

    def forward(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        users, items = outputs["user_embedding"], outputs["item_embedding"]
        logits = users @ items.T - self.log_q[batch["item_index"]][None, :]  # (B, B)
        same_item = batch["item_index"][None, :] == batch["item_index"][:, None]
        logits = logits.masked_fill(same_item & ~torch.eye(len(items), dtype=torch.bool), -1e9)
        positive = batch["label"] > 0
        if not positive.any():
            zero = logits.sum() * 0
            return zero, {"total": 0.0, "softmax": 0.0}
        targets = torch.arange(len(items), device=logits.device)
        per_row = F.cross_entropy(logits[positive], targets[positive], reduction="none")
        weight = batch["weight"][positive].abs()
        loss = (per_row * weight).sum() / weight.sum()
        return loss, {"total": loss.item(), "softmax": loss.item()}
