"""Training sized to the rows (issue 37): the batch, learning rate and epochs a run uses."""

from __future__ import annotations

import math

import pytest

from core.checkpoints import load_checkpoint
from core.market.config import (
    MAX_FITTED_BATCH,
    MAX_LR_SCALE,
    MIN_FITTED_EPOCHS,
    ROW_VISITS,
    ROWS_PER_STEP,
    TrainingConfig,
)
from core.market.loaders import create_data_loaders
from core.market.lstm_config import LSTMTrainingConfig
from core.market.training import size_to_rows, sizing_sentence, train_model


def test_small_data_trains_with_the_values_given() -> None:
    given = TrainingConfig()
    sized = given.sized_for(32 * ROWS_PER_STEP)
    assert (sized.batch_size, sized.epochs) == (given.batch_size, given.epochs)
    assert sized.optimizer.base_learning_rate == given.optimizer.base_learning_rate
    assert not sized.fit_to_rows, "the sized settings size nothing again"
    assert sizing_sentence(given, sized, 6400) is None


@pytest.mark.parametrize(
    ("rows", "batch", "epochs"),
    [
        (84_000, 512, 100),  # about 130 tickers x 4 years of daily rows
        (690_000, 1024, 21),  # 500 tickers x 10 years
        (5_000_000, 1024, MIN_FITTED_EPOCHS),
    ],
)
def test_a_large_universe_gets_a_larger_batch_a_scaled_rate_and_fewer_epochs(
    rows: int, batch: int, epochs: int
) -> None:
    given = LSTMTrainingConfig()
    sized = given.sized_for(rows)
    assert sized.batch_size == batch <= MAX_FITTED_BATCH
    assert sized.epochs == epochs == min(100, max(MIN_FITTED_EPOCHS, ROW_VISITS // rows))
    scale = min(MAX_LR_SCALE, math.sqrt(batch / given.batch_size))
    assert sized.optimizer.base_learning_rate == pytest.approx(0.001 * scale)
    assert sized.early_stopping_patience == min(given.early_stopping_patience, epochs)
    assert sized.sequence == given.sequence and sized.loss == given.loss
    sentence = sizing_sentence(given, sized, rows)
    assert f"batch 32 -> {batch}" in sentence and f"{rows:,} training rows" in sentence


def test_sizing_never_shrinks_what_was_asked_and_can_be_switched_off() -> None:
    large = TrainingConfig(batch_size=4096, epochs=5)
    sized = large.sized_for(10_000_000)
    assert (sized.batch_size, sized.epochs) == (4096, 5)
    off = TrainingConfig(fit_to_rows=False)
    assert off.sized_for(10_000_000) is off


def test_a_run_trains_checkpoints_and_restores_at_the_sized_values(
    market_dataset, tmp_path, monkeypatch
) -> None:
    """The loaders batch at the sized size, and the checkpoint keeps the sized settings (so
    a restore rebuilds the same batches); 4 rows a step makes the planted market large."""
    monkeypatch.setattr("core.market.config.ROWS_PER_STEP", 4)
    training = TrainingConfig(batch_size=16, epochs=2)
    rows = create_data_loaders(market_dataset, batch_size=16).train.num_rows
    expected = min(MAX_FITTED_BATCH, 2 ** round(math.log2(rows / 4)))
    assert expected >= 16 * MAX_LR_SCALE**2, "large enough for the rate's full scaling"
    result = train_model(
        market_dataset, model_name="dual_tower", training=training, run_dir=tmp_path
    )
    assert result.loaders.train.batch_size == expected == result.trainer.settings.batch_size
    kept = load_checkpoint(tmp_path / "best.pt").meta["training"]
    assert kept["batch_size"] == expected and kept["fit_to_rows"] is False
    assert kept["optimizer"]["base_learning_rate"] == pytest.approx(0.001 * MAX_LR_SCALE)


def test_settings_that_are_not_market_settings_pass_through(market_dataset) -> None:
    from core.recsys.config import RecsysTrainingConfig

    loaders = create_data_loaders(market_dataset, batch_size=16)
    plain = RecsysTrainingConfig()
    assert size_to_rows(plain, loaders) is plain
    assert loaders.train.batch_size == 16
