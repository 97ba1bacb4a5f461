"""Model registry: a name -> how to build it, what it reads, what it predicts, its loss.

``create_model(name, **overrides)`` builds a model from its config's defaults (plus
overrides, validated like YAML); ``MODELS`` feeds the CLI and the dashboard's model picker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from core.checkpoints import Checkpoint, CheckpointError
from core.config import Config, ConfigError
from core.market.config import (
    CompactDualTowerConfig,
    DualTowerModelConfig,
    LossConfig,
    TrainingConfig,
)
from core.market.losses import ClassificationLoss, DualTowerLoss, DualTowerTrendLoss, LSTMLoss
from core.market.lstm_config import (
    LSTMLossConfig,
    LSTMModelConfig,
    LSTMTrainingConfig,
    SimpleLSTMConfig,
)
from core.market.models.baselines import CompactDualTower, SimpleLSTM
from core.market.models.dual_tower import DualTowerRelevanceModel
from core.market.models.layers import count_parameters
from core.market.models.lstm_attention import LSTMAttentionModel

Readout = Callable[[dict[str, torch.Tensor], int], tuple[torch.Tensor, torch.Tensor]]
"""(outputs, horizon) -> (score in [-1, 1], class probabilities): one view for evaluation."""


def _relevance_readout(
    outputs: dict[str, torch.Tensor], h: int
) -> tuple[torch.Tensor, torch.Tensor]:
    return outputs[f"score_{h}d"], torch.softmax(outputs[f"direction_logits_{h}d"], -1)


def _trend_readout(outputs: dict[str, torch.Tensor], h: int) -> tuple[torch.Tensor, torch.Tensor]:
    return outputs[f"{h}day_trend"], torch.softmax(outputs[f"{h}day_direction"], -1)


def class_readout(outputs: dict[str, torch.Tensor], h: int) -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.softmax(outputs[f"class_logits_{h}d"], -1)
    return probs[:, 2] - probs[:, 0], probs  # expected direction: P(up) - P(down)


@dataclass(frozen=True)
class Target:
    """What a model's score and classes are compared with, per horizon h."""

    score: str  # column prefix: relevance_{h}d or trend_{h}d
    label: str  # column prefix of the class label
    class_names: tuple[str, ...]
    kind: str = "return"
    """What the score forecasts, which sets its use (``core.market.uses``): 'return' (the
    forward return's direction or rank: traded) or 'co-movement' (relevance: hedged)."""

    def columns(self, h: int) -> tuple[str, str]:
        return f"{self.score}_{h}d", f"{self.label}_{h}d"


RELEVANCE = Target(
    "relevance", "relevance_class", ("negative", "none", "positive"), kind="co-movement"
)
UP_DOWN = Target("trend", "up", ("down", "up"))
THREE_CLASS = Target("trend", "class", ("down", "neutral", "up"))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    config_class: type[Config]
    build: Callable[[Any], nn.Module]
    inputs: tuple[str, ...]
    """Batch keys passed to ``forward``, in order."""
    targets: str
    """Target kind the loaders provide: 'relevance' or 'trend'."""
    sequence: bool
    """Reads LSTM windows (``create_lstm_data_loaders``) rather than rows."""
    make_loss: Callable[[Any, Sequence[int]], nn.Module]
    """Builds the default loss from the training config's ``loss`` section (or None) and the
    horizons the model predicts."""
    training_config_class: type[Config]
    """Trainer settings (and loss weights, sequence shape) this model trains with."""
    target: Target
    readout: Readout


TABULAR = ("context", "stock", "context_mask")

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "dual_tower",
            "Dual-tower relevance model: relevance score and direction per horizon (seeds 000/001)",
            DualTowerModelConfig,
            DualTowerRelevanceModel,
            TABULAR,
            "relevance",
            False,
            lambda loss, horizons: DualTowerLoss(
                loss if isinstance(loss, LossConfig) else None, horizons
            ),
            TrainingConfig,
            RELEVANCE,
            _relevance_readout,
        ),
        ModelSpec(
            "lstm_attention",
            "Bidirectional LSTM with temporal attention: trend and up/down per horizon (seed 003)",
            LSTMModelConfig,
            LSTMAttentionModel,
            ("sequence",),
            "trend",
            True,
            lambda loss, horizons: LSTMLoss(
                loss if isinstance(loss, LSTMLossConfig) else None, horizons
            ),
            LSTMTrainingConfig,
            UP_DOWN,
            _trend_readout,
        ),
        ModelSpec(
            "simple_lstm",
            "SimpleLSTM: 3-class down/neutral/up trend from weekly windows (seed 002)",
            SimpleLSTMConfig,
            SimpleLSTM,
            ("sequence",),
            "trend",
            True,
            lambda _loss, horizons: ClassificationLoss(horizons),
            LSTMTrainingConfig,
            THREE_CLASS,
            class_readout,
        ),
        ModelSpec(
            "compact_dual_tower",
            "Compact dual tower: 3-class down/neutral/up trend from one row (seed 002)",
            CompactDualTowerConfig,
            CompactDualTower,
            TABULAR,
            "trend",
            False,
            lambda _loss, horizons: ClassificationLoss(horizons),
            TrainingConfig,
            THREE_CLASS,
            class_readout,
        ),
    )
}


def model_spec(name: str, config: Config | None = None, *, targets: str | None = None) -> ModelSpec:
    """The registered model; with its ``config`` (or the ``targets`` kind a report names),
    switched to the targets asked for (the dual tower's ``target: trend`` learns the trend
    score and its 3-class label)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    spec = MODELS[name]
    wanted = targets or getattr(config, "target", spec.targets)
    if wanted == "trend" and spec.targets == "relevance":
        return replace(
            spec,
            targets="trend",
            target=THREE_CLASS,
            make_loss=lambda loss, horizons: DualTowerTrendLoss(
                loss if isinstance(loss, LossConfig) else None, horizons
            ),
        )
    return spec


def create_model(name: str, config: Config | None = None, **overrides: Any) -> nn.Module:
    """Build a registered model from ``config``, or from its defaults with ``overrides``
    (nested sections may be partial: ``context_tower={"hidden_dims": [8]}``)."""
    spec = model_spec(name)
    if config is None:
        config = spec.config_class.from_dict(overrides, partial=True)
    elif overrides:
        raise ValueError("pass either a config or overrides, not both")
    return spec.build(config)


def rebuild_model(checkpoint: Checkpoint) -> nn.Module:
    """The registered model the checkpoint names, built from its config, weights loaded."""
    name = checkpoint.meta.get("model")
    try:
        spec = model_spec(str(name))
        config = spec.config_class.from_dict(checkpoint.meta["config"])
    except (KeyError, ConfigError) as error:
        raise CheckpointError(
            f"{checkpoint.path}: model {name!r} or its config does not match this code ({error})."
        ) from None
    model = create_model(spec.name, config)
    try:
        model.load_state_dict(checkpoint.state_dict, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0:3]
        raise CheckpointError(
            f"{checkpoint.path}: the weights do not fit a {spec.name} built from its config: "
            + " ".join(line.strip() for line in first)
        ) from None
    model.eval()
    return model


__all__ = [
    "MODELS",
    "ModelSpec",
    "Target",
    "count_parameters",
    "create_model",
    "model_spec",
    "rebuild_model",
]
