"""The configs of the sequence models (seed 002): the LSTM with temporal attention (its
architecture, windows, loss and training) and the simple LSTM."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.config import Config, is_dropout, positive_dims
from core.market.config import (
    DEFAULT_HORIZONS,
    HorizonLossConfig,
    HorizonModelConfig,
    MarketTrainingConfig,
)


@dataclass
class LSTMModelConfig(HorizonModelConfig):
    input_dim: int = 62
    """Stock features per time step."""
    hidden_dim: int = 128
    """LSTM hidden size; bidirectional outputs are projected back to this width."""
    num_lstm_layers: int = 2
    """Stacked LSTM layers."""
    num_attention_heads: int = 4
    """Heads of the temporal attention; must divide hidden_dim."""
    dropout_rate: float = 0.2
    """Dropout between LSTM layers, in attention and in the heads."""
    bidirectional: bool = True
    """Read the window in both directions."""
    head_hidden_dims: list[int] = field(default_factory=lambda: [64, 32])
    """Widths of each horizon head's hidden layers."""
    horizons: list[int] = field(default_factory=lambda: list(DEFAULT_HORIZONS))
    """Label horizons the heads predict, in calendar days: fixed by the dataset (its
    DataConfig.horizons), which training copies here."""

    def validate(self) -> None:
        super().validate()
        self.require("input_dim", self.input_dim > 0, "an integer > 0")
        self.require("hidden_dim", self.hidden_dim > 0, "an integer > 0")
        self.require("num_lstm_layers", self.num_lstm_layers > 0, "an integer > 0")
        self.require(
            "num_attention_heads",
            self.num_attention_heads > 0 and self.hidden_dim % self.num_attention_heads == 0,
            f"a positive divisor of hidden_dim ({self.hidden_dim})",
        )
        self.require("dropout_rate", is_dropout(self.dropout_rate), "a number in [0, 1)")
        self.require("head_hidden_dims", positive_dims(self.head_hidden_dims), "positive integers")


@dataclass
class LSTMSequenceConfig(Config):
    sequence_length: int = 12
    """Time steps per input window."""
    step: Literal["weekly", "daily"] = "weekly"
    """Spacing of the steps: one per week (last trading day) or every trading day."""
    normalize_features: bool = True
    """Standardise features with statistics of the training segment only."""

    def validate(self) -> None:
        self.require("sequence_length", self.sequence_length > 0, "an integer > 0")

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        data.pop("label_horizons", None)  # an old duplicate of DataConfig.horizons
        return data


@dataclass
class LSTMLossConfig(HorizonLossConfig):
    regression_weight: float = 1.0
    """Weight of each horizon's trend-score MSE."""
    classification_weight: float = 0.5
    """Weight of each horizon's up/down cross-entropy."""
    horizon_weights: dict[str, float] = field(default_factory=dict)
    """Extra factor on one horizon's two terms, keyed like '30d'; horizons not named keep 1."""


@dataclass
class LSTMTrainingConfig(MarketTrainingConfig):
    loss: LSTMLossConfig = field(default_factory=LSTMLossConfig)
    """Weights of the LSTM multi-task loss."""
    sequence: LSTMSequenceConfig = field(default_factory=LSTMSequenceConfig)
    """How input windows are cut."""


@dataclass
class SimpleLSTMConfig(HorizonModelConfig):
    input_dim: int = 62
    """Features per step."""
    hidden_dim: int = 64
    """LSTM hidden units (seed 002: 64)."""
    num_layers: int = 2
    """Stacked LSTM layers (seed 002: 2)."""
    head_hidden_dims: list[int] = field(default_factory=lambda: [32])
    """Widths of the classification layers after the LSTM."""
    dropout: float = 0.2
    """Dropout between LSTM layers and in the head, in [0, 1)."""
    horizons: list[int] = field(default_factory=lambda: list(DEFAULT_HORIZONS))
    """Label horizons the heads predict, in calendar days: fixed by the dataset (its
    DataConfig.horizons), which training copies here."""

    def validate(self) -> None:
        super().validate()
        for name in ("input_dim", "hidden_dim", "num_layers"):
            self.require(name, getattr(self, name) > 0, "an integer > 0")
        self.require("head_hidden_dims", positive_dims(self.head_hidden_dims), "positive integers")
        self.require("dropout", 0 <= self.dropout < 1, "a number in [0, 1)")
