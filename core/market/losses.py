"""Losses. Each is a small module: ``loss(outputs, batch) -> (total, components)``.

``outputs`` is the model's dict, ``batch`` the loader's dict of targets; ``components``
holds every named term (detached floats) so the trainer can chart each one.

- DualTowerLoss (seeds 000/001): per horizon the MSE of the relevance score and the
  cross-entropy of its direction, plus tower orthogonality and embedding magnitude.
  Orthogonality is the mean squared cross-correlation between the (batch-standardised)
  context and stock embedding dimensions: 0 when the towers encode unrelated information.
  Magnitude is the mean squared L2 norm of both embeddings.
- WeightedDualTowerLoss: the same with per-sample weights 1 + alpha |relevance| (normalised to
  mean 1), so strong relationships count more than the many near-zero ones.
- LSTMLoss (seed 003): per horizon MSE of the trend score and cross-entropy of up/down.
- WeightedLSTMLoss: per-sample weights 1 + alpha |trend|.
- VolatilityAwareLoss: per-sample weights median(vol) / vol (clipped to [0.25, 4]), so calm
  periods, where a trend is more meaningful, are not drowned out by volatile ones.
- ClassificationLoss (seed 002): cross-entropy of the 3-class trend per horizon.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.market.config import DEFAULT_HORIZONS, LossConfig
from core.market.lstm_config import LSTMLossConfig

Components = dict[str, float]


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    return values.mean() if weights is None else (values * weights).sum() / weights.sum()


def orthogonality(context: torch.Tensor, stock: torch.Tensor) -> torch.Tensor:
    """Mean squared cross-correlation between the dimensions of two embeddings (B, Ec), (B, Es)."""

    def standardise(x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(0, keepdim=True)
        return centred / (centred.pow(2).mean(0, keepdim=True).sqrt() + 1e-6)

    cross = standardise(context).T @ standardise(stock) / context.shape[0]  # (Ec, Es)
    return cross.pow(2).mean()


def magnitude(context: torch.Tensor, stock: torch.Tensor) -> torch.Tensor:
    return 0.5 * (context.pow(2).sum(-1).mean() + stock.pow(2).sum(-1).mean())


class _HorizonLoss(nn.Module):
    """Per horizon: weighted MSE of a score and weighted cross-entropy of a class.

    Subclasses name the output and target keys and may weight samples or add terms. With
    ``alpha`` > 0 each sample weighs 1 + alpha x |its target score|, so strong moves count
    more (the weighted variants)."""

    score_output: str  # e.g. "score_{h}d"
    score_target: str
    logits_output: str
    class_target: str
    config_class: type[LossConfig] | type[LSTMLossConfig]
    default_alpha = 0.0

    def __init__(
        self,
        config: LossConfig | LSTMLossConfig | None = None,
        horizons: Sequence[int] = DEFAULT_HORIZONS,
        alpha: float | None = None,
    ) -> None:
        super().__init__()
        self.config = config or self.config_class()
        self.horizons = tuple(horizons)
        self.alpha = self.default_alpha if alpha is None else alpha

    def sample_weights(self, batch: dict[str, torch.Tensor], horizon: int) -> torch.Tensor | None:
        if not self.alpha:
            return None
        return 1.0 + self.alpha * batch[self.score_target.format(h=horizon)].abs()

    def extra_terms(
        self, outputs: dict[str, torch.Tensor]
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """Additional named terms with their weights (none by default)."""
        return {}

    def forward(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, Components]:
        c = self.config
        terms: dict[str, torch.Tensor] = {}
        total = outputs[self.score_output.format(h=self.horizons[0])].new_zeros(())
        for h in self.horizons:
            weights = self.sample_weights(batch, h)
            score = outputs[self.score_output.format(h=h)]
            squared = (score - batch[self.score_target.format(h=h)]).pow(2)
            entropy = F.cross_entropy(
                outputs[self.logits_output.format(h=h)],
                batch[self.class_target.format(h=h)],
                reduction="none",
            )
            terms[f"mse_{h}d"] = _weighted_mean(squared, weights)
            terms[f"ce_{h}d"] = _weighted_mean(entropy, weights)
            weight = c.horizon_weight(h)
            total = total + weight * c.regression_weight * terms[f"mse_{h}d"]
            total = total + weight * c.classification_weight * terms[f"ce_{h}d"]
        for name, (weight, value) in self.extra_terms(outputs).items():
            terms[name] = value
            total = total + weight * value
        return total, {
            **{k: float(v.detach()) for k, v in terms.items()},
            "total": float(total.detach()),
        }


class DualTowerLoss(_HorizonLoss):
    score_output, score_target = "score_{h}d", "relevance_{h}d"
    logits_output, class_target = "direction_logits_{h}d", "relevance_class_{h}d"
    config_class = LossConfig

    def extra_terms(
        self, outputs: dict[str, torch.Tensor]
    ) -> dict[str, tuple[float, torch.Tensor]]:
        context, stock = outputs["context_embedding"], outputs["stock_embedding"]
        return {
            "orthogonality": (self.config.regularization_weight, orthogonality(context, stock)),
            "magnitude": (self.config.magnitude_weight, magnitude(context, stock)),
        }


class DualTowerTrendLoss(DualTowerLoss):
    """The dual tower learning trend targets: the score against ``trend_hd``, the direction
    logits against the down / neutral / up class."""

    score_target, class_target = "trend_{h}d", "class_{h}d"


class WeightedDualTowerLoss(DualTowerLoss):
    default_alpha = 2.0


class LSTMLoss(_HorizonLoss):
    score_output, score_target = "{h}day_trend", "trend_{h}d"
    logits_output, class_target = "{h}day_direction", "up_{h}d"
    config_class = LSTMLossConfig


class WeightedLSTMLoss(LSTMLoss):
    default_alpha = 2.0


class VolatilityAwareLoss(LSTMLoss):
    """LSTMLoss weighted by median(vol) / vol of the batch; needs ``batch['volatility']``."""

    def sample_weights(self, batch: dict[str, torch.Tensor], horizon: int) -> torch.Tensor:
        volatility = batch["volatility"].clamp_min(1e-8)
        return (volatility.median() / volatility).clamp(0.25, 4.0)


class ClassificationLoss(nn.Module):
    """Cross-entropy of the 3-class trend (down / neutral / up) for each horizon, summed."""

    def __init__(self, horizons: Sequence[int] = DEFAULT_HORIZONS) -> None:
        super().__init__()
        self.horizons = tuple(horizons)

    def forward(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, Components]:
        terms = {
            f"ce_{h}d": F.cross_entropy(outputs[f"class_logits_{h}d"], batch[f"class_{h}d"])
            for h in self.horizons
        }
        total = sum(terms.values())
        return total, {
            **{k: float(v.detach()) for k, v in terms.items()},
            "total": float(total.detach()),
        }
