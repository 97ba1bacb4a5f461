"""Bidirectional LSTM with multi-head temporal attention (seed 003).

The LSTM reads a window of steps; the attention query is the final hidden state (both
directions of the last layer), the keys and values are every step's output. Per horizon a
head gives a trend score in [-1, 1] and up/down logits. The attention weights, averaged over
heads, say which steps the prediction leaned on.
"""

from __future__ import annotations

import torch
from torch import nn

from core.market.lstm_config import LSTMModelConfig
from core.market.models.layers import LSTM, mlp


class TrendHead(nn.Module):
    def __init__(self, input_dim: int, hidden_dims: list[int], dropout: float):
        super().__init__()
        self.body, width = mlp(input_dim, hidden_dims, dropout)
        self.trend = nn.Linear(width, 1)
        self.direction = nn.Linear(width, 2)  # (down, up)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.body(x)
        return torch.tanh(self.trend(hidden)).squeeze(-1), self.direction(hidden)


class LSTMAttentionModel(nn.Module):
    def __init__(self, config: LSTMModelConfig) -> None:
        super().__init__()
        self.config = config
        directions = 2 if config.bidirectional else 1
        self.lstm = LSTM(
            config.input_dim,
            config.hidden_dim,
            num_layers=config.num_lstm_layers,
            batch_first=True,
            dropout=config.dropout_rate if config.num_lstm_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
        )
        width = config.hidden_dim * directions
        self.attention = nn.MultiheadAttention(
            width, config.num_attention_heads, dropout=config.dropout_rate, batch_first=True
        )
        self.norm = nn.LayerNorm(width)
        self.heads = nn.ModuleDict(
            {
                f"{h}day": TrendHead(2 * width, config.head_hidden_dims, config.dropout_rate)
                for h in config.horizons
            }
        )

    def forward(self, sequence: torch.Tensor) -> dict[str, torch.Tensor]:
        """sequence (B, L, F) -> trend scores (B,), direction logits (B, 2), weights (B, L)."""
        steps, (hidden, _) = self.lstm(sequence)  # steps (B, L, D*H); hidden (layers*D, B, H)
        directions = 2 if self.config.bidirectional else 1
        last = hidden[-directions:]  # final layer, each direction: (D, B, H)
        query = last.transpose(0, 1).reshape(sequence.shape[0], 1, -1)  # (B, 1, D*H)
        attended, weights = self.attention(
            query, steps, steps, need_weights=True, average_attn_weights=True
        )  # attended (B, 1, D*H); weights (B, 1, L)
        summary = torch.cat([self.norm(attended.squeeze(1)), query.squeeze(1)], dim=-1)
        outputs = {"attention_weights": weights.squeeze(1)}
        for name, head in self.heads.items():
            trend, direction = head(summary)
            outputs[f"{name}_trend"] = trend
            outputs[f"{name}_direction"] = direction
        return outputs
