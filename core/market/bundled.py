"""Real market data that ships with the ``arch`` package, so it works offline.

Two tickers, the S&P 500 (``SPX``) and the NASDAQ Composite (``IXIC``), daily OHLCV
1999-2018, and five macro series: WTI oil (daily), the VIX (daily, 2014-2019), Moody's Aaa and
Baa yields and core CPI (monthly, dated by the month they describe and visible only from
their release, see ``core.market.context.MACRO_SERIES``). There is no news or policy source: those
groups stay missing and masked.

Rows start on ``BUNDLED_START`` by default, when all five macro series are known, while the
stock features still read the price history from 1999 (their warm-up).

The macro series are also the default macro context of imported prices
(``core.market.importers.import_market``): ``bundled_macro_source`` describes them for the
dataset's recipe.
"""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd

from core.market.context import series_spans

BUNDLED_TICKERS = {"SPX": "sp500", "IXIC": "nasdaq"}
BUNDLED_START = "2014-04-01"  # VIX starts in January 2014; its 21-day change a month later
BUNDLED_MACRO = {
    "oil": ("wti", "DCOILWTICO"),
    "vix": ("vix", "vix"),
    "cpi": ("core_cpi", "CPILFESL"),
}


def _load(module: str) -> pd.DataFrame:
    import importlib

    return importlib.import_module(f"arch.data.{module}").load()


def bundled_prices() -> pd.DataFrame:
    """Daily OHLCV of the two indices in the long format (date, ticker, open, ..., volume)."""
    frames = []
    for ticker, module in BUNDLED_TICKERS.items():
        raw = _load(module).rename(columns=str.lower).rename_axis("date").reset_index()
        frames.append(
            raw.assign(ticker=ticker, date=pd.to_datetime(raw["date"]))[
                ["date", "ticker", "open", "high", "low", "close", "volume"]
            ]
        )
    return pd.concat(frames, ignore_index=True).astype({"volume": float})


def bundled_macro_series() -> pd.DataFrame:
    """The five macro series in the long format (date, series, value), missing values dropped."""
    return _bundled_macro_series().copy()


@functools.cache
def _bundled_macro_series() -> pd.DataFrame:
    frames = []
    for series, (module, column) in BUNDLED_MACRO.items():
        raw = _load(module)[column]
        frames.append(pd.DataFrame({"date": raw.index, "series": series, "value": raw.values}))
    default = _load("default")  # Moody's Aaa and Baa yields
    for series in ("aaa", "baa"):
        raw = default[series.upper()]
        frames.append(pd.DataFrame({"date": raw.index, "series": series, "value": raw.values}))
    frame = pd.concat(frames, ignore_index=True)
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.dropna(subset=["value"]).reset_index(drop=True)


def bundled_macro_source() -> dict[str, Any]:
    """What a join of the bundled macro series brings, for a dataset's recipe: the package
    and version they ship with and each series' first and last date."""
    from importlib.metadata import version

    return {
        "source": "bundled",
        "package": f"arch {version('arch')}",
        "series": series_spans(bundled_macro_series()),
    }
