"""Where market data comes from, and the one path from raw records to a built dataset.

A ``MarketData`` holds prices, raw context records (scored headlines, policy events, macro
series) and, for synthetic data, the oracle. ``build_market_dataset`` turns any of them into
the dataset frame: the 25 context features from ``core.market.context``, the 62 stock features and
labels from ``core.market.features.build_dataset``, and the oracle columns joined last.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from core.market.bundled import BUNDLED_START, bundled_macro_series, bundled_prices
from core.market.config import DEFAULT_TICKERS, DataConfig
from core.market.context import macro_features, news_features, policy_features
from core.market.cross_section import is_cross_sectional, rank_scores
from core.market.features import build_dataset
from core.market.synthetic import GENERATOR_VERSION, generate_market


@dataclass
class MarketData:
    """Raw inputs of a dataset. Every context part is optional; missing groups are masked."""

    prices: pd.DataFrame
    headlines: pd.DataFrame | None = None  # date, ticker, score, [source]
    policy_events: pd.DataFrame | None = None  # date, type, urgency, sector, [stance]
    macro_series: pd.DataFrame | None = None  # date, series, value, [released]
    oracle: pd.DataFrame | None = None  # date, ticker, oracle_* (synthetic only)
    recipe: dict[str, Any] = field(default_factory=dict)
    """What the data was made from; with the DataConfig it identifies a built dataset."""
    notes: dict[str, Any] = field(default_factory=dict)
    """Sentences for the user about how the data was assembled (``"context"``: where the
    macro context of an import came from); not part of the recipe."""

    def context(self) -> list[pd.DataFrame]:
        parts = []
        if self.headlines is not None and not self.headlines.empty:
            parts.append(news_features(self.headlines))
        if self.policy_events is not None and not self.policy_events.empty:
            parts.append(policy_features(self.policy_events))
        if self.macro_series is not None and not self.macro_series.empty:
            parts.append(macro_features(self.macro_series))
        return parts


def synthetic_data(
    tickers: list[str], start: str, end: str, *, seed: int, signal: bool, horizons: list[int]
) -> MarketData:
    market = generate_market(
        tickers, start, end, seed=seed, signal=signal, horizons=tuple(horizons)
    )
    return MarketData(
        prices=market.prices,
        headlines=market.headlines,
        policy_events=market.policy_events,
        macro_series=market.macro_series,
        oracle=market.oracle,
        recipe={
            "source": "synthetic",
            "generator_version": GENERATOR_VERSION,
            "tickers": list(tickers),
            "start": start,
            "end": end,
            "seed": seed,
            "signal": signal,
        },
    )


DEMO_START, DEMO_END, DEMO_SEED = "2015-01-01", "2024-12-31", 42


def demo_data(horizons: list[int]) -> MarketData:
    """The default demo: the seeds' seven tickers over ten years, with the planted signal."""
    return synthetic_data(
        DEFAULT_TICKERS, DEMO_START, DEMO_END, seed=DEMO_SEED, signal=True, horizons=horizons
    )


def bundled_data() -> MarketData:
    from importlib.metadata import version

    return MarketData(
        prices=bundled_prices(),
        macro_series=bundled_macro_series(),
        recipe={"source": "bundled", "arch_version": version("arch")},
    )


def bundled_config(config: DataConfig | None = None) -> DataConfig:
    """The bundled data's rows start once every macro series is known, unless told otherwise."""
    config = config or DataConfig()
    return config if config.start_date else replace(config, start_date=BUNDLED_START)


OHLCV = ["open", "high", "low", "close", "volume"]


def build_market_dataset(data: MarketData, config: DataConfig | None = None) -> pd.DataFrame:
    """The dataset frame for ``data``: features, masks, labels, oracle columns if any, and
    each row's raw OHLCV (for charts; no model reads them)."""
    dataset = build_dataset(data.prices, data.context(), config)
    raw = data.prices[["date", "ticker", *OHLCV]].assign(date=lambda f: pd.to_datetime(f["date"]))
    dataset = dataset.merge(raw, on=["date", "ticker"], how="left", validate="1:1")
    if data.oracle is not None:
        dataset = dataset.merge(data.oracle, on=["date", "ticker"], how="left", validate="1:1")
        config = config or DataConfig()
        if is_cross_sectional(dataset, config.cross_sectional):  # the truth on the day's scale
            for column in [c for c in dataset.columns if c.startswith("oracle_trend_")]:
                dataset[column] = rank_scores(dataset, column)
    return dataset
