"""Training the market models through the one trainer (``core.market.training``): what a
run records, checkpoints, threads, early stopping and cancel, resume, input checks, the LSTM's
windows and seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from core.config import ConfigError
from core.market.config import DataConfig, DualTowerModelConfig, TrainingConfig
from core.market.lstm_config import LSTMTrainingConfig
from core.market.models import create_model, model_spec, rebuild_model
from core.market.training import train_model
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


def test_same_seed_same_run(market_dataset) -> None:
    def losses(seed: int) -> list[float]:
        result = train_model(
            market_dataset, model_name="compact_dual_tower", training=quick(epochs=2, seed=seed)
        )
        return [r["val/total"] for r in result.history]

    assert losses(3) == losses(3)
    assert losses(3) != losses(4)
