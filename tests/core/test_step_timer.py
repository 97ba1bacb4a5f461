"""The step timer: every section of every training step is timed, and only when asked."""

from __future__ import annotations

import time

import torch
from torch import nn

from core.step_timer import StepTimer
from core.trainer import Trainer

SECTIONS = {"data", "forward", "loss", "backward", "optimizer", "callbacks"}


class Settings:
    epochs, early_stopping_patience, min_delta, max_grad_norm = 1, 0, 0.0, 1.0


def squared_error(outputs, batch):
    loss = (outputs["y"] - batch["y"]).pow(2).mean()
    return loss, {"total": float(loss.detach())}


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"y": self.layer(x).squeeze(-1)}


def batches(count: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        {"x": torch.randn(4, 3, generator=generator), "y": torch.randn(4, generator=generator)}
        for _ in range(count)
    ]


def trainer(timer: StepTimer | None) -> Trainer:
    model = Linear()
    return Trainer(
        model,
        squared_error,
        torch.optim.SGD(model.parameters(), lr=0.1),
        inputs=["x"],
        settings=Settings(),
        timer=timer,
    )


def test_each_section_of_each_step_is_timed() -> None:
    timer = StepTimer()
    trainer(timer).train_epoch(batches(5))
    assert set(timer.seconds) == SECTIONS
    assert all(timer.calls[name] == 5 for name in SECTIONS - {"data"})
    assert timer.calls["data"] == 6, "the fetch that finds the loader empty is timed too"
    assert all(seconds > 0 for seconds in timer.seconds.values())
    assert abs(sum(timer.shares().values()) - 1) < 1e-9


def test_a_section_holds_the_time_spent_in_it() -> None:
    class SlowLoader:
        def __iter__(self):
            for batch in batches(2):
                time.sleep(0.05)
                yield batch

    timer = StepTimer()
    trainer(timer).train_epoch(SlowLoader())
    assert timer.seconds["data"] >= 0.1
    assert timer.seconds["data"] > 5 * timer.seconds["forward"]


def test_without_a_timer_the_trainer_times_nothing() -> None:
    untimed = trainer(None)
    record = untimed.train_epoch(batches(3))
    assert untimed.timer is None and record["train/total"] > 0
