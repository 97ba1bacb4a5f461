"""Batches from a dataset: shapes, purged splits, train-only scaling, LSTM windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from core.batches import TensorBatches
from core.config import ConfigError
from core.market.features import CONTEXT_FEATURES, STOCK_FEATURES
from core.market.loaders import create_data_loaders, create_lstm_data_loaders, weekly_rows


def test_tabular_batches_have_the_model_inputs_and_targets(market_dataset) -> None:
    loaders = create_data_loaders(market_dataset, batch_size=64)
    batch = next(iter(loaders.train))
    assert batch["context"].shape == (64, 25) and batch["stock"].shape == (64, 62)
    assert batch["context_mask"].shape == (64, 3)
    assert batch["relevance_7d"].dtype == torch.float32
    assert batch["relevance_class_30d"].dtype == torch.long
    assert set(batch["relevance_class_7d"].tolist()) <= {0, 1, 2}
    assert isinstance(loaders.train, TensorBatches) and len(loaders.train) == int(
        np.ceil(loaders.train.num_rows / 64)
    )
    labelled = market_dataset.dropna(subset=["relevance_7d", "relevance_30d"])
    assert sum(part.num_rows for part in loaders) < len(labelled), "the purge drops rows"


def test_no_training_label_window_reaches_validation_or_test(market_dataset) -> None:
    train, val, test = create_data_loaders(market_dataset)
    horizon = pd.Timedelta(days=30)
    assert train.meta["date"].max() + horizon < val.meta["date"].min()
    assert val.meta["date"].max() + horizon < test.meta["date"].min()


def test_scaler_is_fit_on_training_rows_only(market_dataset) -> None:
    train, val, _ = create_data_loaders(market_dataset)
    rows = market_dataset.merge(train.meta, on=["date", "ticker"])
    features = [*CONTEXT_FEATURES, *STOCK_FEATURES]
    np.testing.assert_allclose(train.standardizer.mean, rows[features].mean(), rtol=1e-5)  # float32
    stock = torch.cat([b["stock"] for b in train])
    assert stock.mean(0).abs().max() < 0.05, "centred (up to the clip at +/- 5)"
    assert torch.cat([b["stock"] for b in val]).mean(0).abs().max() > 1e-3


def test_shuffling_repeats_per_seed_and_visits_every_row_once(market_dataset) -> None:
    def first_epoch(seed: int) -> torch.Tensor:
        return torch.cat(
            [b["relevance_7d"] for b in create_data_loaders(market_dataset, seed=seed).train]
        )

    one, again, other = first_epoch(1), first_epoch(1), first_epoch(2)
    assert torch.equal(one, again) and not torch.equal(one, other)
    assert torch.equal(one.sort().values, other.sort().values)


def test_seed_keyword_arguments_and_refusals(market_dataset, prices) -> None:
    _, val, test = create_data_loaders(market_dataset, val_fraction=0.2, test_fraction=0.1)
    assert val.num_rows > test.num_rows
    with pytest.raises(ConfigError, match="time_aware_split"):
        create_data_loaders(market_dataset, time_aware_split=False)
    from core.market.features import build_dataset

    with pytest.raises(ValueError, match="relevance needs context"):
        create_data_loaders(build_dataset(prices))
    trend = create_data_loaders(
        build_dataset(prices), targets="trend", val_fraction=0.25, test_fraction=0.25
    )
    assert "class_7d" in next(iter(trend.train))


def test_lstm_windows_end_at_their_labelled_row(market_dataset) -> None:
    loaders = create_lstm_data_loaders(market_dataset, sequence_length=12, batch_size=16)
    batch = next(iter(loaders.val))
    assert batch["sequence"].shape == (16, 12, 62)
    assert batch["up_7d"].dtype == torch.long and batch["trend_30d"].dtype == torch.float32
    meta = loaders.val.meta.iloc[0]
    row = market_dataset[
        (market_dataset["date"] == meta["date"]) & (market_dataset["ticker"] == meta["ticker"])
    ]
    expected = loaders.val.standardizer.transform(row)[0]
    np.testing.assert_allclose(batch["sequence"][0, -1].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert batch["trend_7d"][0].item() == pytest.approx(row["trend_7d"].iloc[0], rel=1e-6)
    horizon = pd.Timedelta(days=30)
    assert loaders.train.meta["date"].max() + horizon < loaders.val.meta["date"].min()


def test_weekly_steps_are_the_last_trading_day_of_each_week(market_dataset) -> None:
    weekly = weekly_rows(market_dataset.sort_values(["ticker", "date"]))
    assert (weekly.groupby("ticker")["date"].diff().dropna() >= pd.Timedelta(days=3)).all()
    assert (weekly["date"].dt.day_of_week == 4).mean() > 0.95  # business days: mostly Fridays
    daily = create_lstm_data_loaders(market_dataset, step="daily", sequence_length=5)
    assert next(iter(daily.train))["sequence"].shape[1:] == (5, 62)
