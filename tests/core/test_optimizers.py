"""Optimiser parameter groups and the warm-up + cosine schedule (``core.optimizers``)."""

from __future__ import annotations

import pytest

from core.config import OptimizerConfig, SchedulerConfig
from core.market.models import create_model
from core.optimizers import create_optimizer, create_scheduler


def test_optimizer_groups_and_schedules() -> None:
    model = create_model("dual_tower")
    optimizer = create_optimizer(
        model, OptimizerConfig(base_learning_rate=0.01, stock_tower_lr_multiplier=0.5)
    )
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert rates == {"base": 0.01, "stock_tower": 0.005}
    scheduler = create_scheduler(
        optimizer, SchedulerConfig(warmup_epochs=2, min_learning_rate=1e-4), total_epochs=10
    )
    seen = []
    for _ in range(10):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[0] < seen[1] < seen[2] == pytest.approx(0.01)
    assert seen[-1] < seen[5] < seen[2]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(1e-4)


def test_a_run_shorter_than_the_warmup_still_decays() -> None:
    optimizer = create_optimizer(
        create_model("dual_tower"), OptimizerConfig(base_learning_rate=0.01)
    )
    scheduler = create_scheduler(
        optimizer, SchedulerConfig(warmup_epochs=5, min_learning_rate=1e-4), total_epochs=3
    )
    seen = []
    for _ in range(3):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[0] < seen[1] < seen[2]  # warm-up over the first two epochs
    assert optimizer.param_groups[0]["lr"] < seen[2]  # then the decay
