"""Relevance labels: the formula, the forward window, and a factor fitted on training only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.market.features import CONTEXT_FEATURES
from core.market.relevance import ContextFactor, relevance_labels
from core.market.splits import training_end


def _labels(dataset: pd.DataFrame) -> pd.DataFrame:
    return relevance_labels(
        dataset,
        columns=CONTEXT_FEATURES,
        train_end=training_end(dataset["date"], 0.7),
        horizons=[7, 30],
        threshold=0.25,
    )


def test_relevance_is_the_uncentred_correlation_over_the_window(market_dataset) -> None:
    end = training_end(market_dataset["date"], 0.7)
    factor = ContextFactor.fit(market_dataset, columns=CONTEXT_FEATURES, train_end=end)
    values = factor.values(market_dataset)
    rows = market_dataset[market_dataset["ticker"] == "CYC"].sort_values("date")
    t = rows["date"].iloc[100]
    window = rows[(rows["date"] > t) & (rows["date"] <= t + pd.Timedelta(days=7))]
    r = window["ret_1d"].to_numpy()
    f = values.reindex(window["date"]).to_numpy()
    expected = (r * f).sum() / np.sqrt((r**2).sum() * (f**2).sum())
    labels = _labels(market_dataset)
    got = labels.loc[rows.index[100], "relevance_7d"]
    assert got == pytest.approx(expected)
    assert labels["relevance_7d"].dropna().between(-1, 1).all()
    classes = labels["relevance_class_7d"].dropna()
    assert set(classes.unique()) == {0.0, 1.0, 2.0}
    score = labels.loc[classes.index, "relevance_7d"]
    assert ((classes == 2) == (score > 0.25)).all() and ((classes == 0) == (score < -0.25)).all()


def test_factor_ignores_everything_after_the_training_segment(market_dataset) -> None:
    end = training_end(market_dataset["date"], 0.7)
    poisoned = market_dataset.copy()
    later = poisoned["date"] > end
    rng = np.random.default_rng(0)
    poisoned.loc[later, CONTEXT_FEATURES] = rng.normal(size=(later.sum(), len(CONTEXT_FEATURES)))
    poisoned.loc[later, "ret_1d"] = rng.normal(size=later.sum())
    clean = ContextFactor.fit(market_dataset, columns=CONTEXT_FEATURES, train_end=end)
    dirty = ContextFactor.fit(poisoned, columns=CONTEXT_FEATURES, train_end=end)
    np.testing.assert_allclose(clean.weights, dirty.weights)
    np.testing.assert_allclose(clean.scale, dirty.scale)


def test_relevance_at_t_reads_only_the_forward_window(market_dataset) -> None:
    base = _labels(market_dataset)
    rows = market_dataset[market_dataset["ticker"] == "HDG"].sort_values("date")
    t = rows["date"].iloc[len(rows) - 200]  # in the test segment: the factor is unchanged
    changed = market_dataset.copy()
    inside = rows.index[
        (rows["date"] > t + pd.Timedelta(days=3)) & (rows["date"] <= t + pd.Timedelta(days=7))
    ]
    changed.loc[inside[:1], "ret_1d"] += 0.05
    after = _labels(changed)
    row = rows.index[rows["date"] == t][0]
    assert after.loc[row, "relevance_7d"] != pytest.approx(base.loc[row, "relevance_7d"])
    earlier = rows.index[rows["date"] <= t][:-30]  # windows that end before the change
    earlier = [
        i
        for i in earlier
        if rows.loc[i, "date"] + pd.Timedelta(days=30) < changed.loc[inside[0], "date"]
    ]
    pd.testing.assert_frame_equal(after.loc[earlier], base.loc[earlier])


def test_no_context_means_no_relevance(prices) -> None:
    from core.market.features import build_dataset

    dataset = build_dataset(prices)
    assert dataset[["relevance_7d", "relevance_class_30d"]].isna().all().all()


def test_persistence_is_the_trailing_relevance_computed_by_hand(market_dataset) -> None:
    """The persistence baseline against an independent computation: for each sampled row,
    the uncentred correlation of the ticker's returns with the dataset's stored context
    factor over the dates in (t - h, t], found by filtering dates, not by cumulative sums."""
    from core.market.relevance import trailing_relevance

    factor = market_dataset.groupby("date")["context_factor"].first()
    trailing = trailing_relevance(market_dataset, factor, [7, 30])
    rng = np.random.default_rng(5)
    checked = 0
    for index in rng.choice(market_dataset.index, 40, replace=False):
        row = market_dataset.loc[index]
        own = market_dataset[market_dataset["ticker"] == row["ticker"]]
        for h in (7, 30):
            start = row["date"] - pd.Timedelta(days=h)
            window = own[(own["date"] > start) & (own["date"] <= row["date"])]
            got = trailing.loc[index, f"trailing_relevance_{h}d"]
            if start < own["date"].min():
                assert np.isnan(got), "no forecast before a whole window of history"
                continue
            r = window["ret_1d"].to_numpy()
            f = factor.reindex(window["date"]).to_numpy()
            expected = (r * f).sum() / np.sqrt((r**2).sum() * (f**2).sum())
            assert got == pytest.approx(expected, abs=1e-9)
            checked += 1
    assert checked > 40


def test_the_persistence_baseline_reads_only_the_past(market_dataset) -> None:
    """Changing every return after a date leaves the trailing relevance up to it unchanged,
    and it is the baseline a relevance run's evaluation is judged against."""
    from core.market.relevance import trailing_relevance

    factor = market_dataset.groupby("date")["context_factor"].first()
    cut = market_dataset["date"].sort_values().iloc[len(market_dataset) // 2]
    poisoned = market_dataset.copy()
    later = poisoned["date"] > cut
    poisoned.loc[later, "ret_1d"] = np.random.default_rng(1).normal(size=later.sum())
    clean = trailing_relevance(market_dataset, factor, [7])
    dirty = trailing_relevance(poisoned, factor, [7])
    earlier = ~later.to_numpy()
    np.testing.assert_allclose(
        clean.loc[earlier, "trailing_relevance_7d"], dirty.loc[earlier, "trailing_relevance_7d"]
    )
    assert not np.allclose(
        clean.loc[~earlier, "trailing_relevance_7d"].fillna(0),
        dirty.loc[~earlier, "trailing_relevance_7d"].fillna(0),
    )
