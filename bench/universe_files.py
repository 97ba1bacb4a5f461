"""A generated stock universe written as a download tool writes one: a CSV per ticker.

    python -m bench.universe_files OUT_FOLDER --tickers 500 --years 10

The shape follows the real 482-stock S&P 500 download of issue 37 and the shared 100-stock
sample: business days, one file per ticker with ``Date,High,Low,Open,Close,Volume,Adj
Close,Name``; returns from a market factor, ten sector factors and a fat-tailed idiosyncratic
part (daily volatility 1-3 %); about one ticker in six listed late or delisted early, one in
sixty with a history too short for the features; and the rows real files carry: a repeated
last date, a zero row after a corporate action, a high below the low, an empty price.
Nothing here is predictable, so a model trained on it has no skill to find: the universe
measures time and memory, not quality.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SECTORS = 10


def write_universe(
    folder: Path, *, tickers: int = 500, years: int = 10, seed: int = 0, start: str = "2010-01-04"
) -> list[Path]:
    """Write ``tickers`` price files into ``folder`` and return their paths."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start, periods=252 * years)
    n = len(days)
    market = rng.standard_t(4, n) * 0.008 / np.sqrt(2) + 0.0003
    sectors = rng.standard_normal((SECTORS, n)) * 0.006
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(tickers):
        name = f"S{index:03d}"
        first, last = _listing(rng, n, index)
        beta = rng.uniform(0.6, 1.5)
        vol = rng.uniform(0.01, 0.03)
        idio = rng.standard_t(4, n) * vol / np.sqrt(2)
        returns = beta * market + sectors[index % SECTORS] + idio
        close = 50 * np.exp(np.cumsum(returns))[first:last]
        spread = np.abs(rng.standard_normal(len(close))) * vol * close
        open_ = close * np.exp(rng.standard_normal(len(close)) * vol / 3)
        frame = pd.DataFrame(
            {
                "Date": days[first:last].strftime("%Y-%m-%d"),
                "High": np.maximum(open_, close) + spread / 2,
                "Low": np.minimum(open_, close) - spread / 2,
                "Open": open_,
                "Close": close,
                "Volume": rng.integers(100_000, 20_000_000, len(close)),
                "Adj Close": close,
                "Name": name,
            }
        )
        frame = _messy(rng, frame, index).round(4)
        path = folder / f"{name}_data.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def _listing(rng: np.random.Generator, n: int, index: int) -> tuple[int, int]:
    """First and one-past-last day of a ticker: most span the whole period; some list late,
    some delist early, a few have only months."""
    if index % 60 == 59:  # too short for the features and the longest horizon
        first = int(rng.integers(0, n - 200))
        return first, first + int(rng.integers(20, 150))
    first, last = 0, n
    if index % 12 == 5:
        first = int(rng.integers(n // 10, n // 2))
    if index % 12 == 7:
        last = int(rng.integers(n // 2, n - n // 10))
    return first, last


def _messy(rng: np.random.Generator, frame: pd.DataFrame, index: int) -> pd.DataFrame:
    """The rows real downloads carry, on a few tickers."""
    if index % 100 == 3:  # the last bar again, with a corrected close
        repeat = frame.iloc[[-1]].copy()
        repeat[["Close", "Adj Close"]] *= 1.001
        frame = pd.concat([frame, repeat], ignore_index=True)
    if index % 100 == 11:  # an all-zero bar after a corporate action
        frame.loc[len(frame) // 2, ["High", "Low", "Open", "Close", "Adj Close"]] = 0.0
    if index % 100 == 17:  # high below low
        row = len(frame) // 3
        high, low = frame.at[row, "High"], frame.at[row, "Low"]
        frame.loc[row, ["High", "Low"]] = [low, high]
    if index % 100 == 23:  # a day with empty prices
        frame.loc[len(frame) // 4, ["High", "Low", "Open", "Close", "Adj Close"]] = np.nan
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = write_universe(args.folder, tickers=args.tickers, years=args.years, seed=args.seed)
    print(f"{len(paths)} files in {args.folder}")


if __name__ == "__main__":
    main()
