"""Data-pipeline cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.harness import Timed, case

TICKERS = 500
DAYS = 2520  # ten years of trading days


def random_walk_prices(tickers: int, days: int, seed: int = 0) -> pd.DataFrame:
    """Consistent OHLCV random walks; the cost of features does not depend on the signal."""
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, (tickers, days)), axis=1))
    open_ = close * np.exp(rng.normal(0, 0.004, close.shape))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, close.shape)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, close.shape)))
    dates = pd.bdate_range("2014-01-01", periods=days)
    return pd.DataFrame(
        {
            "date": np.tile(dates, tickers),
            "ticker": np.repeat([f"T{i:03d}" for i in range(tickers)], days),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": rng.integers(100_000, 2_000_000, close.size).astype(float),
        }
    )


@case(
    "data.build_dataset_500x10y",
    repeats=1,
    description=f"build_dataset (62 stock features + labels) for {TICKERS} tickers x {DAYS} days",
    target="under 60 s and 6 GB on 2 cores",
)
def build_500_tickers(scratch: Path) -> Timed:
    from core.features import build_dataset

    prices = random_walk_prices(TICKERS, DAYS)

    def build() -> dict[str, float]:
        import time

        start = time.perf_counter()
        dataset = build_dataset(prices)
        return {
            "input_rows": len(prices),
            "rows_per_s": len(prices) / (time.perf_counter() - start),
            "output_rows": len(dataset),
        }

    return build
