from __future__ import annotations

import numpy as np
import pandas as pd

from core.market.config import DataConfig
from core.market.features import (
    CONTEXT_FEATURE_GROUPS,
    CONTEXT_FEATURES,
    FEATURES,
    MASK_COLUMNS,
    STOCK_FEATURES,
    build_dataset,
    context_asof,
)
from core.market.labels import label_columns
from core.market.relevance import relevance_columns


def test_columns_and_no_context_means_every_group_masked(prices: pd.DataFrame) -> None:
    dataset = build_dataset(prices)
    assert len(CONTEXT_FEATURES) == 25 and len(FEATURES) == 87
    assert [len(v) for v in CONTEXT_FEATURE_GROUPS.values()] == [8, 5, 12]
    assert list(dataset.columns) == [
        "date",
        "ticker",
        *CONTEXT_FEATURES,
        *STOCK_FEATURES,
        *MASK_COLUMNS,
        *label_columns([7, 30]),
        "context_factor",
        *relevance_columns([7, 30]),
    ]
    assert (dataset[MASK_COLUMNS] == 0).all().all()
    assert dataset[relevance_columns([7, 30])].isna().all().all(), "no context, no relevance"
    assert dataset[CONTEXT_FEATURES].isna().all().all(), "unknown context stays NaN, not zero"
    assert dataset[STOCK_FEATURES].notna().all().all()


def test_context_is_visible_from_the_day_it_is_known() -> None:
    rows = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-03-01", "2024-03-04", "2024-03-05"]),  # Fri, Mon, Tue
            "ticker": "AAA",
        }
    )
    # Released on Saturday 2 March: unknown on Friday, known from Monday.
    context = pd.DataFrame({"date": pd.to_datetime(["2024-03-02"]), "infl_yoy": [3.1]})
    known = context_asof(context, rows)
    assert np.isnan(known.loc[0, "infl_yoy"])
    assert known.loc[1:, "infl_yoy"].tolist() == [3.1, 3.1]
    assert known["mask_macro"].tolist() == [0.0, 0.0, 0.0], "one macro series is not the group"


def test_group_mask_is_one_only_where_the_whole_group_is_known() -> None:
    rows = pd.DataFrame({"date": pd.bdate_range("2024-01-01", periods=4), "ticker": "AAA"})
    policy = CONTEXT_FEATURE_GROUPS["policy"]
    context = pd.DataFrame(
        {"date": pd.bdate_range("2024-01-02", periods=3), **{n: [1.0, 2.0, 3.0] for n in policy}}
    )
    context.loc[1, "policy_stance"] = np.nan
    known = context_asof(context, rows)
    assert known["mask_policy"].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert (known["mask_news"] == 0).all()


def test_per_ticker_context_joins_by_ticker() -> None:
    rows = pd.DataFrame(
        {"date": pd.to_datetime(["2024-01-03", "2024-01-03"]), "ticker": ["AAA", "BBB"]}
    )
    context = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02", "2024-01-02"]),
            "ticker": ["AAA", "BBB"],
            "news_sentiment_mean": [0.5, -0.25],
        }
    )
    assert context_asof(context, rows)["news_sentiment_mean"].tolist() == [0.5, -0.25]


def test_dataset_features_ignore_later_rows_of_prices_and_context(prices: pd.DataFrame) -> None:
    macro = CONTEXT_FEATURE_GROUPS["macro"]
    rng = np.random.default_rng(3)
    context = pd.DataFrame(
        {"date": pd.date_range("2011-12-01", "2013-12-31", freq="W-SAT")}
    ).assign(**{n: lambda f, n=n: rng.normal(size=len(f)) for n in macro})
    cut = pd.Timestamp("2013-01-31")
    full = build_dataset(prices, context)
    truncated = build_dataset(prices[prices["date"] <= cut], context[context["date"] <= cut])
    columns = ["date", "ticker", *FEATURES, *MASK_COLUMNS]
    expected = full.loc[full["date"] <= cut, columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(truncated[columns], expected)
    assert (full["mask_macro"] == 1).all()


def test_custom_horizons_and_threshold_come_from_the_config(prices: pd.DataFrame) -> None:
    dataset = build_dataset(prices, config=DataConfig(horizons=[5], neutral_z=0.0))
    assert "trend_5d" in dataset.columns and "trend_7d" not in dataset.columns
    assert set(dataset["class_5d"].dropna().unique()) <= {0.0, 2.0}
