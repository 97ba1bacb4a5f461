"""Dual-tower relevance model (seeds 000 and 001): how much a context matters to a stock.

A context tower embeds the 25 news / policy / macro features (plus the 3 missing-group masks),
a stock tower embeds the 62 stock features, and the towers meet in a bilinear interaction
(a learned context x stock product) next to their concatenation. Per horizon (7 and 30
days) a head gives a relevance score in [-1, 1] and direction logits over
(negative, none, positive). With ``input_gate_l1`` > 0 each tower's inputs pass a feature
gate whose L1 norm the trainer adds to the loss (``regularization``).
"""

from __future__ import annotations

import torch
from torch import nn

from core.market.config import DualTowerModelConfig
from core.market.models.layers import Bilinear, FeatureGate, mlp

MASK_GROUPS = 3  # news, policy, macro
POSITIVE = 2  # index of "positive" among (negative, none, positive)


class Tower(nn.Module):
    """An MLP that ends in an embedding (no activation on the embedding itself)."""

    def __init__(self, input_dim: int, hidden_dims: list[int], embedding_dim: int, dropout: float):
        super().__init__()
        self.body, width = mlp(input_dim, hidden_dims, dropout)
        self.embed = nn.Linear(width, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x))


class RelevanceHead(nn.Module):
    def __init__(self, input_dim: int, hidden_dims: list[int], dropout: float, classes: int):
        super().__init__()
        self.body, width = mlp(input_dim, hidden_dims, dropout)
        self.score = nn.Linear(width, 1)
        self.direction = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.body(x)
        return torch.tanh(self.score(hidden)).squeeze(-1), self.direction(hidden)


class DualTowerRelevanceModel(nn.Module):
    def __init__(self, config: DualTowerModelConfig) -> None:
        super().__init__()
        self.config = config
        context, stock, head = config.context_tower, config.stock_tower, config.head
        self.context_gate = self.stock_gate = None
        if config.input_gate_l1 > 0:
            weight = config.input_gate_l1
            self.context_gate = FeatureGate(context.input_dim + MASK_GROUPS, weight)
            self.stock_gate = FeatureGate(stock.input_dim, weight)
        self.context_tower = Tower(
            context.input_dim + MASK_GROUPS,
            context.hidden_dims,
            context.embedding_dim,
            context.dropout,
        )
        self.stock_tower = Tower(
            stock.input_dim, stock.hidden_dims, stock.embedding_dim, stock.dropout
        )
        joint = context.embedding_dim + stock.embedding_dim
        self.bilinear = None
        if config.interaction == "bilinear":
            width = min(context.embedding_dim, stock.embedding_dim)
            self.bilinear = Bilinear(context.embedding_dim, stock.embedding_dim, width)
            joint += width
        self.heads = nn.ModuleDict(
            {
                f"{h}d": RelevanceHead(
                    joint, head.hidden_dims, head.dropout, head.num_direction_classes
                )
                for h in config.horizons
            }
        )

    def embed(
        self, context: torch.Tensor, stock: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 25), (B, 62), (B, 3) -> context (B, Ec) and stock (B, Es) embeddings."""
        if context_mask is None:  # callers without masks mean "every group observed"
            context_mask = context.new_ones(context.shape[0], MASK_GROUPS)
        context = torch.cat([context, context_mask], dim=-1)  # (B, 28)
        if self.context_gate is not None and self.stock_gate is not None:
            context, stock = self.context_gate(context), self.stock_gate(stock)
        return self.context_tower(context), self.stock_tower(stock)

    def regularization(self) -> dict[str, torch.Tensor]:
        """Weighted penalty terms the trainer adds to the training loss."""
        if self.context_gate is None or self.stock_gate is None:
            return {}
        return {"input_gates": self.context_gate.penalty() + self.stock_gate.penalty()}

    def forward(
        self, context: torch.Tensor, stock: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        context_embedding, stock_embedding = self.embed(context, stock, context_mask)
        parts = [context_embedding, stock_embedding]
        if self.bilinear is not None:
            parts.append(self.bilinear(context_embedding, stock_embedding))
        joint = torch.cat(parts, dim=-1)
        outputs = {"context_embedding": context_embedding, "stock_embedding": stock_embedding}
        for name, head in self.heads.items():
            score, logits = head(joint)
            outputs[f"score_{name}"] = score
            outputs[f"direction_logits_{name}"] = logits
            outputs[f"pos_prob_{name}"] = torch.softmax(logits, dim=-1)[:, POSITIVE]
        return outputs

    @torch.no_grad()
    def extract_embeddings(
        self, context: torch.Tensor, stock: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        context_embedding, stock_embedding = self.embed(context, stock, context_mask)
        return {"context_embedding": context_embedding, "stock_embedding": stock_embedding}
