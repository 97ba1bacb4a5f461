"""The synthetic market: deterministic, realistic in shape, and with the signal it claims."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.features import CONTEXT_FEATURES, FEATURES
from core.relevance import ContextFactor
from core.sources import build_market_dataset, synthetic_data
from core.splits import training_end
from core.synthetic import generate_market, oracle_columns


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


def test_relevance_labels_track_the_planted_truth(market, market_dataset) -> None:
    data = market_dataset.dropna(subset=["relevance_30d", "oracle_relevance_30d"])
    assert data["relevance_30d"].corr(data["oracle_relevance_30d"]) > 0.5
    by_ticker = data.groupby("ticker")["oracle_relevance_30d"].mean()
    kinds = market.notes["ticker_kinds"]
    assert kinds == {"CYC": "cyclical", "CYD": "cyclical", "HDG": "hedge", "SWT": "switcher"}
    assert by_ticker["CYC"] > 0.2 and by_ticker["HDG"] < -0.2
    assert data.loc[data["ticker"] == "HDG", "relevance_30d"].mean() < 0


def test_sensitivity_changes_sign_with_the_vix_for_a_switcher(market_dataset) -> None:
    switcher = market_dataset[market_dataset["ticker"] == "SWT"].dropna(
        subset=["oracle_relevance_7d"]
    )
    calm = switcher["vix_level"] < 0.16
    stressed = switcher["vix_level"] > 0.26
    assert calm.sum() > 50 and stressed.sum() > 20
    assert switcher.loc[calm, "oracle_relevance_7d"].mean() < 0
    assert switcher.loc[stressed, "oracle_relevance_7d"].mean() > 0


def _out_of_sample_correlations(dataset: pd.DataFrame) -> tuple[pd.Series, int]:
    end = training_end(dataset["date"], 0.7)
    factor = ContextFactor.fit(dataset, columns=CONTEXT_FEATURES, train_end=end).values(dataset)
    test = dataset[dataset["date"] > end + pd.Timedelta(days=30)]
    test = test.assign(factor=factor.reindex(test["date"]).to_numpy())
    correlations = test.groupby("ticker")[["factor", "ret_1d"]].corr().xs("factor", level=1)
    return correlations["ret_1d"], test.groupby("ticker").size().min()


def test_without_signal_context_and_returns_are_unrelated() -> None:
    tickers = ["CYC", "CYD", "HDG", "SWT"]
    for signal in (True, False):
        data = synthetic_data(
            tickers, "2013-01-01", "2018-12-31", seed=5, signal=signal, horizons=[7, 30]
        )
        correlations, rows = _out_of_sample_correlations(build_market_dataset(data))
        bound = 4 / np.sqrt(rows)  # four standard errors of a zero correlation
        if signal:
            assert correlations.abs().max() > bound, correlations
        else:
            assert (correlations.abs() < bound).all(), correlations
