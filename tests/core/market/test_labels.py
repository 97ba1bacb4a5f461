from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.market.labels import forward_labels, label_columns, trend_labels


def test_label_formula_on_a_hand_example() -> None:
    dates = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-08", "2024-01-20"])
    close = np.array([100.0, 101.0, 99.0, 103.0, 104.0])
    labels = forward_labels(dates.to_numpy(), close, horizon_days=7)
    r = np.diff(np.log(close))
    # Window of 2024-01-01 is (Jan 1, Jan 8]: three returns.
    z = r[:3].sum() / np.sqrt((r[:3] ** 2).sum())
    assert labels["fwd_return_7d"][0] == pytest.approx(np.log(103 / 100))
    assert labels["trend_7d"][0] == pytest.approx(np.tanh(z))
    assert labels["up_7d"][0] == 1.0
    # Jan 8 + 7 days = Jan 15: the data runs to Jan 20, but no trading day lies in (Jan 8,
    # Jan 15], so there is nothing to label.
    assert np.isnan(labels["trend_7d"][3])
    # Jan 20 + 7 days runs past the data: no label.
    assert np.isnan(labels["trend_7d"][4])


def test_labels_read_only_the_forward_window(prices: pd.DataFrame) -> None:
    base = trend_labels(prices, [7, 30])
    t = pd.Timestamp("2012-06-01")
    for horizon in (7, 30):
        after = prices.copy()
        beyond = (after["date"] > t + pd.Timedelta(days=horizon)) & (after["ticker"] == "AAA")
        after.loc[beyond, "close"] *= 1.3
        before_past = prices.copy()
        past = (before_past["date"] < t) & (before_past["ticker"] == "AAA")
        before_past.loc[past, "close"] *= 0.7
        inside = prices.copy()
        window = (
            (inside["date"] > t)
            & (inside["date"] <= t + pd.Timedelta(days=horizon))
            & (inside["ticker"] == "AAA")
        )
        inside.loc[window, "close"] *= 1.05
        row = (base["date"] == t) & (base["ticker"] == "AAA")
        columns = [c for c in label_columns([horizon])]
        for changed, should_change in ((after, False), (before_past, False), (inside, True)):
            got = trend_labels(changed, [7, 30]).loc[row, columns].to_numpy(dtype=float)
            same = np.allclose(got, base.loc[row, columns].to_numpy(dtype=float), equal_nan=True)
            assert same != should_change, (horizon, should_change)


def test_rows_near_the_end_have_no_label(prices: pd.DataFrame) -> None:
    labels = trend_labels(prices, [7, 30])
    last = labels["date"].max()
    late = labels[labels["date"] > last - pd.Timedelta(days=30)]
    assert late["trend_30d"].isna().all()
    assert labels.loc[labels["date"] <= last - pd.Timedelta(days=31), "trend_30d"].notna().all()


def test_scores_and_classes_are_in_range_and_roughly_balanced(prices: pd.DataFrame) -> None:
    labels = trend_labels(prices, [7, 30]).dropna()
    for h in (7, 30):
        assert labels[f"trend_{h}d"].between(-1, 1).all()
        assert set(labels[f"up_{h}d"].unique()) <= {0.0, 1.0}
        shares = labels[f"class_{h}d"].value_counts(normalize=True)
        assert set(shares.index) == {0.0, 1.0, 2.0}
        assert shares.min() > 0.15
