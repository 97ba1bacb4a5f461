"""The synthetic market: deterministic, realistic in shape, and with the signal it claims."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.market.features import CONTEXT_FEATURES, FEATURES
from core.market.relevance import ContextFactor
from core.market.sources import build_market_dataset, synthetic_data
from core.market.splits import training_end
from core.market.synthetic import generate_market, oracle_columns


def test_same_seed_same_market_other_seed_other_market() -> None:
    first = generate_market(["A", "B"], "2020-01-01", "2020-12-31", seed=11)
    again = generate_market(["A", "B"], "2020-01-01", "2020-12-31", seed=11)
    other = generate_market(["A", "B"], "2020-01-01", "2020-12-31", seed=12)
    for name in ("prices", "headlines", "policy_events", "macro_series", "oracle"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not np.allclose(first.prices["close"], other.prices["close"])


def test_prices_are_consistent_and_have_fat_tails_and_volatility_clustering(market) -> None:
    prices = market.prices
    assert (prices["high"] >= prices[["open", "close"]].max(axis=1)).all()
    assert (prices["low"] <= prices[["open", "close"]].min(axis=1)).all()
    assert (prices["low"] > 0).all() and (prices["volume"] > 0).all()
    returns = prices.groupby("ticker")["close"].transform(lambda c: np.log(c).diff()).dropna()
    assert returns.kurt() > 1.0, "fat tails: excess kurtosis well above a normal's 0"
    squared = returns**2
    assert squared.autocorr(1) > 0.05, "volatility clusters: squared returns autocorrelate"


def test_oracle_columns_are_never_features(market_dataset) -> None:
    oracle = oracle_columns([7, 30])
    assert set(oracle) <= set(market_dataset.columns)
    assert not set(oracle) & set(FEATURES)


def test_relevance_labels_track_the_planted_truth(market_dataset) -> None:
    data = market_dataset.dropna(subset=["relevance_30d", "oracle_relevance_30d"])
    assert data["relevance_30d"].corr(data["oracle_relevance_30d"]) > 0.5
    assert (data["oracle_relevance_30d"] < -0.2).mean() > 0.05, "some stocks are hedges"
    assert (data["oracle_relevance_30d"] > 0.2).mean() > 0.2


def test_sensitivity_is_non_linear_in_observable_state(market_dataset) -> None:
    data = market_dataset.dropna(subset=["oracle_relevance_7d"])
    winners, losers = data["ret_63d"] > 0.15, data["ret_63d"] < -0.15
    assert data.loc[winners, "oracle_relevance_7d"].mean() > 0.3
    assert data.loc[losers, "oracle_relevance_7d"].mean() < -0.1, "losers hedge"
    stressed = data["vix_level"] > 0.26
    spread = (
        data[winners & stressed]["oracle_relevance_7d"].mean()
        - data[losers & stressed]["oracle_relevance_7d"].mean()
    )
    calm_spread = (
        data[winners & ~stressed]["oracle_relevance_7d"].mean()
        - data[losers & ~stressed]["oracle_relevance_7d"].mean()
    )
    assert spread > calm_spread + 0.05, "stress amplifies the momentum effect (an interaction)"


def _out_of_sample_correlations(dataset: pd.DataFrame) -> tuple[pd.Series, float, int]:
    """Per-ticker corr(factor, return) on test dates, and the pooled correlation of the return
    with the factor signed by yesterday's 63-day momentum (the planted sensitivity's sign)."""
    end = training_end(dataset["date"], 0.7)
    factor = ContextFactor.fit(dataset, columns=CONTEXT_FEATURES, train_end=end).values(dataset)
    ordered = dataset.sort_values(["ticker", "date"])
    ordered = ordered.assign(momentum=ordered.groupby("ticker")["ret_63d"].shift(1))
    test = ordered[ordered["date"] > end + pd.Timedelta(days=30)].dropna(subset=["momentum"])
    test = test.assign(factor=factor.reindex(test["date"]).to_numpy())
    correlations = test.groupby("ticker")[["factor", "ret_1d"]].corr().xs("factor", level=1)
    signed = np.corrcoef(test["factor"] * np.sign(test["momentum"]), test["ret_1d"])[0, 1]
    return correlations["ret_1d"], signed, test.groupby("ticker").size().min()


def test_without_signal_context_and_returns_are_unrelated() -> None:
    tickers = [f"T{i}" for i in range(8)]
    for signal in (True, False):
        data = synthetic_data(
            tickers, "2013-01-01", "2018-12-31", seed=5, signal=signal, horizons=[7, 30]
        )
        correlations, signed, rows = _out_of_sample_correlations(build_market_dataset(data))
        bound = 4 / np.sqrt(rows)  # four standard errors of a zero correlation, per ticker
        pooled_bound = 4 / np.sqrt(rows * len(tickers))
        if signal:
            assert signed > pooled_bound, signed
        else:
            assert (correlations.abs() < bound).all(), correlations
            assert abs(signed) < pooled_bound, signed
