from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_prices(tickers: list[str], days: int, seed: int = 0) -> pd.DataFrame:
    """A plain random-walk OHLCV frame with consistent high/low, for feature and label tests."""
    rng = np.random.default_rng(seed)
    frames = []
    for ticker in tickers:
        close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, days)))
        open_ = close * np.exp(rng.normal(0, 0.004, days))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, days)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, days)))
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.bdate_range("2012-01-02", periods=days),
                    "ticker": ticker,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.integers(100_000, 2_000_000, days).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def prices() -> pd.DataFrame:
    return make_prices(["AAA", "BBB"], 420)


@pytest.fixture(scope="session")
def market():
    """A small synthetic market with the planted signal (4 tickers, 6 years)."""
    from core.market.sources import synthetic_data

    return synthetic_data(
        ["CYC", "CYD", "HDG", "SWT"],
        "2013-01-01",
        "2018-12-31",
        seed=5,
        signal=True,
        horizons=[7, 30],
    )


@pytest.fixture(scope="session")
def market_dataset(market):
    from core.market.sources import build_market_dataset

    return build_market_dataset(market)


@pytest.fixture
def import_prices() -> pd.DataFrame:
    """Two tickers with just enough history for an import (warm-up + longest horizon)."""
    frame = make_prices(["AAA", "BBB"], 300, seed=4)
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    return frame
