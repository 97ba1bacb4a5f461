from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.market.labels import trend_labels
from core.market.splits import SplitError, Standardizer, time_split, walk_forward_folds


def test_no_training_label_window_reaches_validation_or_test(prices: pd.DataFrame) -> None:
    labels = trend_labels(prices, [7, 30])
    split = time_split(labels["date"], train_fraction=0.6, val_fraction=0.2, purge_days=30)
    train_dates = labels.loc[split.train, "date"]
    val_dates, test_dates = labels.loc[split.val, "date"], labels.loc[split.test, "date"]
    assert (train_dates + pd.Timedelta(days=30)).max() < val_dates.min()
    assert (val_dates + pd.Timedelta(days=30)).max() < test_dates.min()
    assert not (split.train & split.val).any() and not (split.val & split.test).any()


def test_purge_shorter_than_nothing_still_orders_segments(prices: pd.DataFrame) -> None:
    split = time_split(prices["date"], train_fraction=0.7, val_fraction=0.15, purge_days=0)
    assert split.bounds["train"][1] < split.bounds["val"][0] < split.bounds["test"][0]
    # With no purge every date belongs to a segment.
    assert (split.train | split.val | split.test).all()


def test_too_few_dates_for_the_purge_is_an_error(prices: pd.DataFrame) -> None:
    short = prices[prices["date"] < pd.Timestamp("2012-03-01")]
    with pytest.raises(SplitError, match="segment is empty"):
        time_split(short["date"], train_fraction=0.7, val_fraction=0.15, purge_days=30)


def test_walk_forward_folds_expand_and_purge(prices: pd.DataFrame) -> None:
    folds = walk_forward_folds(prices["date"], folds=3, purge_days=30)
    assert len(folds) == 3
    dates = prices["date"]
    previous_train = 0
    for train, test in folds:
        assert train.sum() > previous_train
        previous_train = train.sum()
        assert dates[train].max() + pd.Timedelta(days=30) < dates[test].min()


def test_standardizer_uses_only_training_rows(prices: pd.DataFrame) -> None:
    split = time_split(prices["date"], train_fraction=0.7, val_fraction=0.15, purge_days=30)
    columns = ["close", "volume"]
    scaler = Standardizer.fit(prices[split.train], columns)
    poisoned = prices.copy()
    poisoned.loc[~split.train, columns] *= 1000
    again = Standardizer.fit(poisoned[split.train], columns)
    np.testing.assert_array_equal(scaler.mean, again.mean)
    train_scaled = scaler.transform(prices[split.train])
    np.testing.assert_allclose(train_scaled.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(train_scaled.std(axis=0), 1, atol=1e-9)
    restored = Standardizer.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(restored.transform(prices), scaler.transform(prices))


def test_standardizer_survives_constant_and_missing_columns() -> None:
    frame = pd.DataFrame({"flat": [3.0, 3.0, 3.0], "gone": [np.nan] * 3})
    scaler = Standardizer.fit(frame, ["flat", "gone"])
    out = scaler.transform(frame)
    np.testing.assert_array_equal(out[:, 0], [0.0, 0.0, 0.0])
    assert np.isnan(out[:, 1]).all()
