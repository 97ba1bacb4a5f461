"""Each loss against torch.nn.functional or a hand formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.market.config import LossConfig
from core.market.losses import (
    ClassificationLoss,
    DualTowerLoss,
    LSTMLoss,
    VolatilityAwareLoss,
    WeightedDualTowerLoss,
    WeightedLSTMLoss,
    magnitude,
    orthogonality,
)

g = torch.Generator().manual_seed(0)
B = 16


def dual_outputs_and_batch():
    outputs = {f"score_{h}d": torch.tanh(torch.randn(B, generator=g)) for h in (7, 30)} | {
        f"direction_logits_{h}d": torch.randn(B, 3, generator=g) for h in (7, 30)
    }
    outputs["context_embedding"] = torch.randn(B, 4, generator=g)
    outputs["stock_embedding"] = torch.randn(B, 6, generator=g)
    batch = {f"relevance_{h}d": torch.rand(B, generator=g) * 2 - 1 for h in (7, 30)}
    batch |= {f"relevance_class_{h}d": torch.randint(0, 3, (B,), generator=g) for h in (7, 30)}
    return outputs, batch


def test_dual_tower_loss_matches_functional_terms() -> None:
    outputs, batch = dual_outputs_and_batch()
    config = LossConfig(regularization_weight=0.3, magnitude_weight=0.2)
    total, parts = DualTowerLoss(config)(outputs, batch)
    expected = 0.0
    for h in (7, 30):
        mse = F.mse_loss(outputs[f"score_{h}d"], batch[f"relevance_{h}d"])
        ce = F.cross_entropy(outputs[f"direction_logits_{h}d"], batch[f"relevance_class_{h}d"])
        assert parts[f"mse_{h}d"] == pytest.approx(float(mse), rel=1e-5)
        assert parts[f"ce_{h}d"] == pytest.approx(float(ce), rel=1e-5)
        expected += float(mse) + 0.5 * float(ce)
    c, s = outputs["context_embedding"], outputs["stock_embedding"]
    expected += 0.3 * float(orthogonality(c, s)) + 0.2 * float(magnitude(c, s))
    assert float(total) == pytest.approx(expected, rel=1e-5)
    assert parts["total"] == pytest.approx(expected, rel=1e-5)


def test_orthogonality_and_magnitude_by_hand() -> None:
    x = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    assert float(orthogonality(x, x)) == pytest.approx(1.0, abs=1e-4), "identical: fully correlated"
    y = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    assert float(orthogonality(x, y)) == pytest.approx(0.0, abs=1e-6), "orthogonal columns"
    assert float(magnitude(torch.ones(2, 3), torch.zeros(2, 5))) == pytest.approx(1.5)


def test_weighted_losses_use_the_documented_weights() -> None:
    outputs, batch = dual_outputs_and_batch()
    _, parts = WeightedDualTowerLoss(alpha=2.0)(outputs, batch)
    w = 1 + 2 * batch["relevance_7d"].abs()
    squared = (outputs["score_7d"] - batch["relevance_7d"]) ** 2
    assert parts["mse_7d"] == pytest.approx(float((w * squared).sum() / w.sum()), rel=1e-5)


def lstm_outputs_and_batch():
    outputs = {f"{h}day_trend": torch.tanh(torch.randn(B, generator=g)) for h in (7, 30)}
    outputs |= {f"{h}day_direction": torch.randn(B, 2, generator=g) for h in (7, 30)}
    batch = {f"trend_{h}d": torch.rand(B, generator=g) * 2 - 1 for h in (7, 30)}
    batch |= {f"up_{h}d": torch.randint(0, 2, (B,), generator=g) for h in (7, 30)}
    batch["volatility"] = torch.rand(B, generator=g) + 0.1
    return outputs, batch


def test_lstm_losses() -> None:
    outputs, batch = lstm_outputs_and_batch()
    total, _ = LSTMLoss()(outputs, batch)
    expected = sum(
        float(F.mse_loss(outputs[f"{h}day_trend"], batch[f"trend_{h}d"]))
        + 0.5 * float(F.cross_entropy(outputs[f"{h}day_direction"], batch[f"up_{h}d"]))
        for h in (7, 30)
    )
    assert float(total) == pytest.approx(expected, rel=1e-5)
    _, weighted = WeightedLSTMLoss(alpha=1.0)(outputs, batch)
    w = 1 + batch["trend_7d"].abs()
    squared = (outputs["7day_trend"] - batch["trend_7d"]) ** 2
    assert weighted["mse_7d"] == pytest.approx(float((w * squared).sum() / w.sum()), rel=1e-5)
    _, volatility = VolatilityAwareLoss()(outputs, batch)
    v = batch["volatility"]
    w = (v.median() / v).clamp(0.25, 4.0)
    assert volatility["mse_7d"] == pytest.approx(float((w * squared).sum() / w.sum()), rel=1e-5)


def test_classification_loss() -> None:
    logits = {f"class_logits_{h}d": torch.randn(B, 3, generator=g) for h in (7, 30)}
    batch = {f"class_{h}d": torch.randint(0, 3, (B,), generator=g) for h in (7, 30)}
    total, _ = ClassificationLoss()(logits, batch)
    expected = sum(
        float(F.cross_entropy(logits[f"class_logits_{h}d"], batch[f"class_{h}d"])) for h in (7, 30)
    )
    assert float(total) == pytest.approx(expected, rel=1e-5)
