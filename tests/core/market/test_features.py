from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.market.features import (
    STOCK_FEATURE_GROUPS,
    STOCK_FEATURES,
    WARMUP_DAYS,
    ema,
    rsi,
    stock_features,
    ticker_features,
    true_range,
)


def test_62_features_in_the_seed_groups() -> None:
    sizes = {group: len(names) for group, names in STOCK_FEATURE_GROUPS.items()}
    assert sizes["ohlcv"] == 5 and sizes["returns"] == 5
    assert sizes["technical"] >= 20 and sizes["volatility"] >= 10
    assert len(STOCK_FEATURES) == len(set(STOCK_FEATURES)) == 62


def test_every_feature_is_defined_after_warmup(prices: pd.DataFrame) -> None:
    features = stock_features(prices)
    for _, group in features.groupby("ticker"):
        settled = group[STOCK_FEATURES].iloc[WARMUP_DAYS:]
        assert settled.notna().all().all(), settled.columns[settled.isna().any()].tolist()
        assert np.isfinite(settled.to_numpy()).all()


def test_features_at_t_ignore_every_later_row(prices: pd.DataFrame) -> None:
    full = stock_features(prices)
    for cut in ("2012-12-31", "2013-03-15"):
        cut_date = pd.Timestamp(cut)
        truncated = stock_features(prices[prices["date"] <= cut_date])
        expected = full[full["date"] <= cut_date].reset_index(drop=True)
        pd.testing.assert_frame_equal(truncated, expected)


def test_changing_a_future_row_leaves_earlier_features_alone(prices: pd.DataFrame) -> None:
    changed = prices.copy()
    target = (changed["ticker"] == "AAA") & (changed["date"] == pd.Timestamp("2013-02-01"))
    changed.loc[target, ["open", "high", "low", "close"]] *= 1.5
    before, after = stock_features(prices), stock_features(changed)
    earlier = before["date"] < pd.Timestamp("2013-02-01")
    pd.testing.assert_frame_equal(before[earlier], after[earlier])
    on_day = (after["ticker"] == "AAA") & (after["date"] == pd.Timestamp("2013-02-01"))
    assert not np.allclose(
        before.loc[on_day, STOCK_FEATURES].to_numpy(), after.loc[on_day, STOCK_FEATURES].to_numpy()
    )


def test_features_are_scale_free(prices: pd.DataFrame) -> None:
    scaled = prices.copy()
    scaled[["open", "high", "low", "close"]] *= 37.0
    scaled["volume"] *= 5.0
    a, b = stock_features(prices), stock_features(scaled)
    volume_based = {"volume_z20"}  # log1p(volume) is only approximately shift-invariant
    columns = [c for c in STOCK_FEATURES if c not in volume_based]
    np.testing.assert_allclose(a[columns].to_numpy(), b[columns].to_numpy(), rtol=1e-8, atol=1e-10)


def _wilder_reference(values: list[float], n: int) -> list[float]:
    out, average = [], None
    for i, value in enumerate(values):
        average = value if i == 0 else average + (value - average) / n
        out.append(average if i >= n - 1 else float("nan"))
    return out


def test_rsi_matches_a_hand_computed_reference() -> None:
    close = pd.Series([44.0, 44.3, 44.1, 44.6, 45.2, 45.0, 45.6, 46.1, 45.8, 46.3])
    changes = [float("nan"), *np.diff(close).tolist()]
    gains = [0.0 if np.isnan(c) else max(c, 0.0) for c in changes]
    losses = [0.0 if np.isnan(c) else max(-c, 0.0) for c in changes]
    # pandas ewm skips the leading NaN change; the reference starts at the first change.
    gain_avg = _wilder_reference(gains[1:], 3)
    loss_avg = _wilder_reference(losses[1:], 3)
    expected = [float("nan")] + [
        up / (up + down) for up, down in zip(gain_avg, loss_avg, strict=True)
    ]
    np.testing.assert_allclose(rsi(close, 3).to_numpy(), expected, equal_nan=True)


def test_ema_and_macd_match_the_recursive_definition() -> None:
    close = pd.Series(np.linspace(10, 20, 40) + np.sin(np.arange(40)))
    alpha = 2 / 13
    expected, value = [], None
    for x in close:
        value = x if value is None else alpha * x + (1 - alpha) * value
        expected.append(value)
    got = ema(close, 12).to_numpy()
    np.testing.assert_allclose(got[11:], expected[11:])
    assert np.isnan(got[:11]).all()


def test_bollinger_stochastic_and_true_range_by_hand() -> None:
    days = 30
    index = pd.bdate_range("2020-01-01", periods=days)
    close = pd.Series(100 + np.arange(days) * 0.5 + (np.arange(days) % 3), index=index)
    prices = pd.DataFrame(
        {
            "open": close - 0.2,
            "high": close + 1.0,
            "low": close - 1.5,
            "close": close,
            "volume": np.full(days, 1000.0),
        },
        index=index,
    )
    features = ticker_features(prices)
    window = close.iloc[-20:]
    mean, sd = window.mean(), window.std(ddof=0)
    assert features["bb_position_20"].iloc[-1] == pytest.approx(
        (close.iloc[-1] - (mean - 2 * sd)) / (4 * sd)
    )
    assert features["bb_width_20"].iloc[-1] == pytest.approx(4 * sd / mean)
    low14, high14 = prices["low"].iloc[-14:].min(), prices["high"].iloc[-14:].max()
    assert features["stoch_k_14"].iloc[-1] == pytest.approx(
        (close.iloc[-1] - low14) / (high14 - low14)
    )
    tr = true_range(prices["high"], prices["low"], prices["close"])
    assert tr.iloc[5] == pytest.approx(
        max(
            2.5,
            abs(prices["high"].iloc[5] - close.iloc[4]),
            abs(prices["low"].iloc[5] - close.iloc[4]),
        )
    )
    log_returns = np.diff(np.log(close.to_numpy()))
    assert features["rv_21"].iloc[-1] == pytest.approx(
        np.std(log_returns[-21:], ddof=1) * np.sqrt(252)
    )
    assert features["ret_5d"].iloc[-1] == pytest.approx(np.log(close.iloc[-1] / close.iloc[-6]))


def test_constant_or_zero_volume_is_a_state_not_missing_data(prices: pd.DataFrame) -> None:
    from core.market.features import STOCK_FEATURES, stock_features

    for volume in (0.0, 1000.0):
        features = stock_features(prices.assign(volume=volume)).groupby("ticker").tail(100)
        assert features[STOCK_FEATURES].notna().all().all()
        assert (features["volume_z20"] == 0).all() and (features["volume_ratio_20"] == 1).all()
