"""Seed 002's compact 3-class models (down / neutral / up), one set of logits per horizon."""

from __future__ import annotations

import torch
from torch import nn

from core.dropout import Dropout
from core.market.config import CompactDualTowerConfig
from core.market.lstm_config import SimpleLSTMConfig
from core.market.models.dual_tower import MASK_GROUPS
from core.market.models.layers import LSTM, mlp

CLASSES = 3


class SimpleLSTM(nn.Module):
    def __init__(self, config: SimpleLSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.lstm = LSTM(
            config.input_dim,
            config.hidden_dim,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.body, width = mlp(config.hidden_dim, config.head_hidden_dims, config.dropout)
        self.logits = nn.ModuleDict({f"{h}d": nn.Linear(width, CLASSES) for h in config.horizons})

    def forward(self, sequence: torch.Tensor) -> dict[str, torch.Tensor]:
        """sequence (B, L, F) -> class logits (B, 3) per horizon."""
        _, (hidden, _) = self.lstm(sequence)  # hidden (layers, B, H)
        features = self.body(hidden[-1])
        return {f"class_logits_{name}": layer(features) for name, layer in self.logits.items()}


class CompactDualTower(nn.Module):
    def __init__(self, config: CompactDualTowerConfig) -> None:
        super().__init__()
        self.config = config
        self.context_tower = nn.Sequential(
            nn.Linear(config.context_dim + MASK_GROUPS, config.tower_dim),
            nn.ReLU(),
            Dropout(config.dropout),
        )
        self.stock_tower = nn.Sequential(
            nn.Linear(config.stock_dim, config.tower_dim), nn.ReLU(), Dropout(config.dropout)
        )
        self.logits = nn.ModuleDict(
            {f"{h}d": nn.Linear(2 * config.tower_dim, CLASSES) for h in config.horizons}
        )

    def forward(
        self, context: torch.Tensor, stock: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        if context_mask is None:
            context_mask = context.new_ones(context.shape[0], MASK_GROUPS)
        joint = torch.cat(
            [self.context_tower(torch.cat([context, context_mask], -1)), self.stock_tower(stock)],
            dim=-1,
        )
        return {f"class_logits_{name}": layer(joint) for name, layer in self.logits.items()}
