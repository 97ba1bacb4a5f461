"""The Data page's "Feature coverage" tab: each group's observed share, overall, per ticker and
per year, and where the macro context came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from core.market.config import DataConfig
from core.market.importers import import_market
from services.datasets import store_market_dataset
from storage import DataHome, open_engine

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_coverage_tab_shows_shares_and_the_bundled_macro_source(
    data_home: DataHome, tmp_path: Path
) -> None:
    days = pd.bdate_range("2017-01-02", "2019-06-28")  # bundled macro ends in January 2019
    close = 100 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.01, len(days))))
    path = tmp_path / "acme.csv"
    pd.DataFrame(
        {
            "date": days.strftime("%Y-%m-%d"),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": 1000.0,
        }
    ).to_csv(path, index=False)
    data, _ = import_market([path])
    engine = open_engine(data_home.database_url)
    store_market_dataset(engine=engine, name="acme", data=data, config=DataConfig(), description="")
    engine.dispose()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["news"] == "0%" and metrics["policy"] == "0%"
    assert 0.5 < int(metrics["macro"].rstrip("%")) / 100 < 1, metrics  # 2018 in, 2019 out
    assert any("Macro context: the series bundled with arch" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) >= 3, "candles, coverage per ticker and per year"
