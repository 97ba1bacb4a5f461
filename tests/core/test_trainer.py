"""The one trainer (``core.trainer``): weight averaging, stops, precision, fused steps,
regularisation and denormals, on tiny modules of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.checkpoints import load_checkpoint
from core.config import ConfigError
from core.optimizers import create_optimizer
from tests.core.market.test_training import quick


class _Line(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"y": self.linear(x).squeeze(-1)}


def _squared_error(outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    loss = (outputs["y"] - batch["y"]).pow(2).mean()
    return loss, {"total": float(loss.detach())}


def test_weight_average_follows_the_formula_and_is_what_gets_kept(tmp_path: Path) -> None:
    from core.trainer import Trainer

    torch.manual_seed(0)
    x = torch.randn(64, 3)
    batches = [{"x": x[i : i + 16], "y": x[i : i + 16].sum(-1)} for i in range(0, 64, 16)]
    model, decay = _Line(), 0.9
    trajectory: list[torch.Tensor] = []

    class Watch:
        def on_batch_end(self, trainer, step, components) -> None:
            trajectory.append(torch.nn.utils.parameters_to_vector(trainer.model.parameters()))

        def on_epoch_end(self, trainer, record) -> None: ...

    trainer = Trainer(
        model,
        _squared_error,
        torch.optim.SGD(model.parameters(), lr=0.05),
        inputs=["x"],
        settings=quick(epochs=3, ema_decay=decay, early_stopping_patience=0),
        device="cpu",
        callbacks=[Watch()],
        checkpoint_dir=tmp_path,
    )
    trainer.fit(batches, batches)
    expected = trajectory[0].detach().clone()  # the first update copies the weights
    for weights in trajectory[1:]:
        expected = decay * expected + (1 - decay) * weights.detach()
    averaged = torch.nn.utils.parameters_to_vector(trainer.ema.module.parameters())
    torch.testing.assert_close(averaged, expected)
    assert not torch.allclose(averaged, trajectory[-1]), "the average lags the last step"
    # Validation scores the average; the loss falls every epoch here, so the last average is
    # the best, and it is what best.pt holds and what the model is left with.
    assert trainer.best_epoch == 3
    best = load_checkpoint(tmp_path / "best.pt").state_dict
    torch.testing.assert_close(torch.cat([best["linear.weight"][0], best["linear.bias"]]), expected)
    torch.testing.assert_close(torch.nn.utils.parameters_to_vector(model.parameters()), expected)
    assert load_checkpoint(tmp_path / "last.pt").trainer_state["ema"] is not None


def test_weight_average_decay_is_validated() -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        quick(ema_decay=1.0)


def test_a_stop_asked_after_the_last_epoch_leaves_a_run_that_ran_every_epoch() -> None:
    """A sweep's prune verdict is written by the server while the worker trains on; when it
    lands after the last epoch the trial ran in full and counts as complete, not pruned
    (tests/services/test_sweeps.py saw a 'pruned' trial with all 6 epochs)."""
    from core.trainer import Trainer

    torch.manual_seed(0)
    x = torch.randn(32, 3)
    batches = [{"x": x[i : i + 16], "y": x[i : i + 16].sum(-1)} for i in range(0, 32, 16)]

    class StopAt:
        def __init__(self, epoch: int) -> None:
            self.epoch = epoch

        def on_batch_end(self, trainer, step, components) -> None: ...

        def on_epoch_end(self, trainer, record) -> None:
            if record["epoch"] >= self.epoch:
                trainer.request_stop("pruned")

    def fitted(stop_at: int) -> Trainer:
        model = _Line()
        trainer = Trainer(
            model,
            _squared_error,
            torch.optim.SGD(model.parameters(), lr=0.05),
            inputs=["x"],
            settings=quick(epochs=3, early_stopping_patience=0),
            device="cpu",
            callbacks=[StopAt(stop_at)],
        )
        trainer.fit(batches, batches)
        return trainer

    early = fitted(2)
    assert early.stopped_because == "pruned" and len(early.history) == 2
    late = fitted(3)
    assert late.stopped_because == "epochs" and len(late.history) == 3


def test_bf16_runs_the_training_step_under_autocast_and_validates_in_fp32() -> None:
    """precision bf16: a training step's forward pass runs in bfloat16 (the linear layer's
    output is bf16 there) and the loss reads it in fp32; evaluation and the weights stay
    fp32, and the fit lands where the fp32 fit does to bfloat16's precision."""
    from core.trainer import Trainer

    torch.manual_seed(0)
    x = torch.randn(256, 3)
    batches = [
        {"x": x[i : i + 64], "y": x[i : i + 64] @ torch.tensor([1.0, -2.0, 0.5])}
        for i in range(0, 256, 64)
    ]
    produced: list[torch.dtype] = []
    read: list[torch.dtype] = []

    class Watched(_Line):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            outputs = super().forward(x)
            produced.append(outputs["y"].dtype)
            return outputs

    def loss(outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        read.append(outputs["y"].dtype)
        return _squared_error(outputs, batch)

    fits = {}
    steps = len(batches)
    for precision in ("fp32", "bf16"):
        torch.manual_seed(1)
        model = Watched()
        trainer = Trainer(
            model,
            loss,
            torch.optim.SGD(model.parameters(), lr=0.1),
            inputs=["x"],
            settings=quick(epochs=20, precision=precision, early_stopping_patience=0),
            device="cpu",
        )
        produced.clear()
        read.clear()
        trainer.fit(batches, batches)
        expected = torch.bfloat16 if precision == "bf16" else torch.float32
        # The first epoch: its training steps, then its validation.
        assert produced[: 2 * steps] == [expected] * steps + [torch.float32] * steps
        assert read[: 2 * steps] == [torch.float32] * 2 * steps, "the loss reads fp32"
        assert model.linear.weight.dtype == torch.float32
        fits[precision] = torch.cat([model.linear.weight[0], model.linear.bias]).detach()
    torch.testing.assert_close(fits["bf16"], fits["fp32"], atol=2e-2, rtol=0)
    assert not torch.equal(fits["bf16"], fits["fp32"]), "bf16 steps differ from fp32 ones"
    assert trainer.history[-1]["val/total"] < 1e-3


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ConfigError, match="precision"):
        quick(precision="fp16")


def test_a_resumed_state_saved_before_the_fused_step_keeps_the_fused_step() -> None:
    from core.trainer import Trainer

    model = _Line()
    trainer = Trainer(
        model,
        _squared_error,
        create_optimizer(model),
        inputs=["x"],
        settings=quick(epochs=1),
        device="cpu",
    )
    assert [g["fused"] for g in trainer.optimizer.param_groups] == [True]
    state = trainer.state()
    for group in state["optimizer"]["param_groups"]:
        group["fused"] = None  # what Adam saved before it was built fused
    trainer.load_state(state)
    assert [g["fused"] for g in trainer.optimizer.param_groups] == [True]


def test_a_models_regularization_is_added_to_the_training_loss_only() -> None:
    """One SGD step on a model whose ``regularization()`` is 0.5 |w|_1: the step is the
    squared error's gradient plus 0.5 sign(w), as computed by hand; the term is recorded
    beside the components in training and absent from validation."""
    from core.trainer import Trainer

    class Penalised(_Line):
        def regularization(self) -> dict[str, torch.Tensor]:
            return {"l1": 0.5 * self.linear.weight.abs().sum()}

    torch.manual_seed(0)
    x = torch.randn(16, 3)
    batch = {"x": x, "y": x.sum(-1)}
    model = Penalised()
    before = model.linear.weight.detach().clone()
    bias = model.linear.bias.detach().clone()
    residual = x @ before[0] + bias - batch["y"]
    gradient = 2 * residual @ x / len(x) + 0.5 * torch.sign(before[0])
    trainer = Trainer(
        model,
        _squared_error,
        torch.optim.SGD(model.parameters(), lr=0.1),
        inputs=["x"],
        settings=quick(epochs=1, early_stopping_patience=0, max_grad_norm=0),
        device="cpu",
    )
    components, _ = trainer.train_step(batch)
    torch.testing.assert_close(model.linear.weight[0], before[0] - 0.1 * gradient)
    assert components["l1"] == pytest.approx(0.5 * float(before.abs().sum()))
    assert components["total"] == pytest.approx(float(residual.pow(2).mean()), rel=1e-5)
    record = trainer.evaluate([batch], prefix="val")
    assert "val/l1" not in record and "val/total" in record


def test_denormals_are_flushed_only_inside_training_and_nesting_keeps_it() -> None:
    """Issue 37: flushing is process-wide, so it is on inside a fit (and a run's evaluation)
    only; the inner of two nested uses does not switch it off for the outer."""
    from core.trainer import flushed_denormals

    tiny = torch.tensor([1e-40], dtype=torch.float32)
    assert float((tiny * 1.0)[0]) > 0, "denormals kept outside"
    with flushed_denormals():
        with flushed_denormals():
            assert float((tiny * 1.0)[0]) == 0.0
        assert float((tiny * 1.0)[0]) == 0.0, "still flushed in the outer"
    assert float((tiny * 1.0)[0]) > 0
