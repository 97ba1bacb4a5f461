"""The one trainer: learning, early stopping, cancel, bad input, checkpoints, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from core.config import ConfigError, OptimizerConfig, SchedulerConfig
from core.market.config import DataConfig, DualTowerModelConfig, TrainingConfig
from core.market.lstm_config import LSTMTrainingConfig
from core.market.models import create_model, model_spec, rebuild_model
from core.market.training import train_model
from core.optimizers import create_optimizer, create_scheduler
from core.trainer import TrainingError

TINY_DUAL = DualTowerModelConfig.from_dict(
    {
        "context_tower": {"hidden_dims": [16], "embedding_dim": 8},
        "stock_tower": {"hidden_dims": [32], "embedding_dim": 8},
        "head": {"hidden_dims": [8]},
    },
    partial=True,
)


def quick(epochs: int = 4, **extra) -> TrainingConfig:
    settings = {"epochs": epochs, "batch_size": 128, "scheduler": {"warmup_epochs": 0}}
    return TrainingConfig.from_dict({**settings, **extra}, partial=True)


class Recorder:
    def __init__(self) -> None:
        self.batches = 0
        self.epochs: list[dict] = []

    def on_batch_end(self, trainer, step, components) -> None:
        self.batches += 1

    def on_epoch_end(self, trainer, record) -> None:
        self.epochs.append(record)


def test_training_learns_and_records_every_component(market_dataset, tmp_path: Path) -> None:
    recorder = Recorder()
    result = train_model(
        market_dataset,
        model_name="dual_tower",
        model_config=TINY_DUAL,
        training=quick(epochs=6),
        run_dir=tmp_path,
        callbacks=[recorder],
    )
    history = result.history
    assert len(history) == 6 == len(recorder.epochs) and recorder.batches > 6
    assert history[-1]["train/total"] < history[0]["train/total"]
    assert history[-1]["val/corr_30d"] > 0.2, "the planted signal is learnable"
    for key in (
        "train/mse_7d",
        "train/ce_30d",
        "train/orthogonality",
        "val/magnitude",
        "grad_norm",
        "lr",
        "val/acc_7d",
    ):
        assert key in history[0]
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    png = result.trainer.plot_history(tmp_path / "history.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    from core.market.evaluation import context_group_importance

    importance = context_group_importance(
        model_spec("dual_tower"),
        result.trainer.model,
        result.loaders.val,
        horizons=result.loaders.horizons,
    )
    assert set(importance) == {"news", "policy", "macro"}
    assert all(np.isfinite(v) for v in importance.values())


def test_checkpoint_rebuilds_the_same_model_with_weights_only(market_dataset, tmp_path) -> None:
    result = train_model(
        market_dataset,
        model_name="dual_tower",
        model_config=TINY_DUAL,
        training=quick(epochs=2),
        run_dir=tmp_path,
    )
    checkpoint = load_checkpoint(tmp_path / "best.pt")
    assert checkpoint.meta["model"] == "dual_tower"
    assert checkpoint.meta["features"][:2] == ["news_sentiment_mean", "news_sentiment_std"]
    assert len(checkpoint.meta["standardizer"]["mean"]) == 87
    raw = torch.load(tmp_path / "best.pt", weights_only=True)  # plain containers only
    assert isinstance(raw["meta_json"], str)
    model = rebuild_model(checkpoint)
    batch = next(iter(result.loaders.test))
    trained = result.trainer.model.eval()
    trained.load_state_dict(checkpoint.state_dict)
    spec = model_spec("dual_tower")
    with torch.no_grad():
        expected = trained(*(batch[k] for k in spec.inputs))["score_7d"]
        assert torch.allclose(model(*(batch[k] for k in spec.inputs))["score_7d"], expected)


def test_bad_checkpoints_are_explained(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"corrupt\.pt is not a readable"):
        load_checkpoint(corrupt)
    model = create_model("compact_dual_tower")
    meta = {"model": "compact_dual_tower", "config": {**model.config.to_dict(), "tower_dim": 8}}
    save_checkpoint(tmp_path / "mismatch.pt", model=model, meta=meta)
    with pytest.raises(CheckpointError, match="do not fit a compact_dual_tower"):
        rebuild_model(load_checkpoint(tmp_path / "mismatch.pt"))
    save_checkpoint(tmp_path / "unknown.pt", model=model, meta={"model": "gpt", "config": {}})
    with pytest.raises(CheckpointError, match="'gpt'"):
        rebuild_model(load_checkpoint(tmp_path / "unknown.pt"))


def test_training_runs_on_the_configured_torch_threads_and_restores_them(market_dataset) -> None:
    seen: list[int] = []
    record = {"on_batch_end": lambda *_: seen.append(torch.get_num_threads())}
    counter = type("ThreadCounter", (Recorder,), record)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_model(
            market_dataset,
            model_name="compact_dual_tower",
            training=quick(epochs=1, threads=1),
            callbacks=[counter()],
        )
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        train_model(
            market_dataset,
            model_name="compact_dual_tower",
            training=quick(epochs=1, threads=0),
            callbacks=[counter()],
        )
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match="threads"):
        quick(threads=-1)


def test_early_stopping_and_cancel(market_dataset) -> None:
    stalled = train_model(
        market_dataset,
        model_name="compact_dual_tower",
        training=quick(epochs=50, early_stopping_patience=2, min_delta=10.0),
    )
    assert stalled.stopped_because == "early_stopping" and len(stalled.history) == 3
    recorder = Recorder()
    cancelled = train_model(
        market_dataset,
        model_name="compact_dual_tower",
        training=quick(epochs=10),
        callbacks=[recorder],
        should_stop=lambda: len(recorder.epochs) >= 2,
    )
    assert cancelled.stopped_because == "cancelled" and len(cancelled.history) == 2
    batches = []
    mid_epoch = train_model(
        market_dataset,
        model_name="compact_dual_tower",
        training=quick(epochs=10),
        callbacks=[
            type("B", (Recorder,), {"on_batch_end": lambda self, t, s, c: batches.append(s)})()
        ],
        should_stop=lambda: len(batches) >= 3,
    )
    assert len(batches) == 3 and mid_epoch.history == [], "a cancel lands within one batch"


def test_resume_continues_where_it_stopped(market_dataset, tmp_path: Path) -> None:
    first = train_model(
        market_dataset, model_name="compact_dual_tower", training=quick(epochs=2), run_dir=tmp_path
    )
    resumed = train_model(
        market_dataset,
        model_name="compact_dual_tower",
        training=quick(epochs=4),
        run_dir=tmp_path,
        resume_from=tmp_path / "last.pt",
    )
    assert [r["epoch"] for r in resumed.history] == [1.0, 2.0, 3.0, 4.0]
    assert resumed.history[:2] == first.history


def test_non_finite_input_names_the_feature(market_dataset) -> None:
    broken = market_dataset.copy()
    broken["rsi_14"] = broken["rsi_14"].astype(float)
    broken.loc[broken.index[:50], "rsi_14"] = np.inf
    with pytest.raises(TrainingError, match="'rsi_14'"):
        train_model(broken, model_name="compact_dual_tower", training=quick(epochs=1), data=None)


def test_the_dataset_fixes_input_widths_and_horizons(market_dataset) -> None:
    """A config written for other data (60 stock features, 5- and 20-day heads) is fitted to
    the dataset it trains on: its widths and its horizons come from the data."""
    config = model_spec("compact_dual_tower").config_class(stock_dim=60, horizons=[5, 20])
    result = train_model(
        market_dataset,
        model_name="compact_dual_tower",
        model_config=config,
        training=quick(epochs=1),
    )
    fitted = result.trainer.model.config
    assert (fitted.stock_dim, fitted.horizons) == (62, [7, 30])


def test_a_model_whose_widths_differ_from_the_data_fails_before_training(market_dataset) -> None:
    from core.market.models import create_model
    from core.market.training import build_loaders, check_dimensions

    spec = model_spec("compact_dual_tower")
    training = quick(epochs=1)
    loaders = build_loaders(
        spec, market_dataset, data=DataConfig(), training=training, seed=training.seed
    )
    model = create_model(spec.name, spec.config_class(stock_dim=60))
    with pytest.raises(TrainingError, match="expects 60 stock features; the dataset gives 62"):
        check_dimensions(spec, model, loaders)


def test_lstm_trains_on_weekly_windows(market_dataset) -> None:
    training = LSTMTrainingConfig.from_dict(
        {
            "epochs": 2,
            "batch_size": 64,
            "scheduler": {"warmup_epochs": 0},
            "sequence": {"sequence_length": 6},
        },
        partial=True,
    )
    config = model_spec("lstm_attention").config_class.from_dict(
        {"hidden_dim": 8, "num_lstm_layers": 1, "num_attention_heads": 2, "head_hidden_dims": [8]},
        partial=True,
    )
    result = train_model(
        market_dataset, model_name="lstm_attention", model_config=config, training=training
    )
    assert next(iter(result.loaders.train))["sequence"].shape[1] == 6
    assert np.isfinite(result.history[-1]["val/total"])


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


def test_same_seed_same_run(market_dataset) -> None:
    def losses(seed: int) -> list[float]:
        result = train_model(
            market_dataset, model_name="compact_dual_tower", training=quick(epochs=2, seed=seed)
        )
        return [r["val/total"] for r in result.history]

    assert losses(3) == losses(3)
    assert losses(3) != losses(4)


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
