"""The real data shipped with the arch package builds offline into a masked dataset."""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest
from arch.data import core_cpi

from core.market.sources import build_market_dataset, bundled_config, bundled_data


@pytest.fixture(scope="module")
def bundled() -> pd.DataFrame:
    return build_market_dataset(bundled_data(), bundled_config())


def test_network_is_blocked_in_tests() -> None:
    with pytest.raises(AssertionError, match="network"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1


def test_bundled_dataset_has_both_indices_and_only_macro_context(bundled) -> None:
    assert set(bundled["ticker"]) == {"SPX", "IXIC"}
    assert bundled["date"].min() == pd.Timestamp("2014-04-01")
    assert bundled["date"].max() == pd.Timestamp("2018-12-31")
    assert (bundled["mask_macro"] == 1).all()
    assert (bundled["mask_news"] == 0).all() and (bundled["mask_policy"] == 0).all()
    assert bundled["news_sentiment_mean"].isna().all(), "missing news is NaN, never zero"
    assert bundled["relevance_30d"].notna().sum() > 2000


def test_bundled_cpi_is_visible_only_after_its_release(bundled) -> None:
    cpi = core_cpi.load()["CPILFESL"]
    spx = bundled[bundled["ticker"] == "SPX"].set_index("date")
    # The February 2016 print is released in mid-March 2016: early March still sees January.
    january = cpi["2016-01-01"] / cpi["2015-01-01"] - 1
    february = cpi["2016-02-01"] / cpi["2015-02-01"] - 1
    assert spx.loc["2016-03-01", "infl_yoy"] == pytest.approx(january)
    assert spx.loc["2016-03-31", "infl_yoy"] == pytest.approx(february)
    assert np.isfinite(spx["vix_level"]).all()
