"""Predict's Forecast tab and Evaluate's live-against-backtest section on a real run: the
button stores a forecast and draws it; once an update brings the outcomes, Evaluate draws
the live rank IC beside the backtest's interval, the drift and the retrain decisions."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.market.sources import MarketData, bundled_data
from services.market.forecasts import forecast_run
from services.market.updates import update_market_dataset
from storage import DataHome, open_engine
from tests.pages.test_evaluate_predict import _open
from tests.services.test_forecasts import D, bundled_until, store, train_small


def _titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


@pytest.mark.slow
def test_forecast_now_stores_and_draws_and_evaluate_follows_the_outcomes(
    data_home: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENDLAB_JOB_RUNNER", "0")
    engine = open_engine(data_home.database_url)
    store(engine, "spx", bundled_until(D))
    run_id = train_small(engine, data_home, "spx")
    at = _open("predict.py", run=str(run_id))
    assert any("No forecast stored" in i.value for i in at.info)
    at.button(key=f"forecast-{run_id}").click().run()
    assert not at.exception, at.exception
    assert any(f"as of {D.date()}" in s.value for s in at.success)
    assert f"Forecast as of {D.date()}: score per ticker with its band" in _titles(at)

    full = bundled_data().prices
    dates = pd.to_datetime(full["date"])
    after = sorted(dates[dates > D].unique())
    middle, end = pd.Timestamp(after[9]), pd.Timestamp(after[44])
    first = MarketData(prices=full[(dates > D) & (dates <= middle)])
    update_market_dataset(engine=engine, name="spx", data=first)
    forecast_run(engine=engine, run_id=run_id)  # live again, ten trading days later
    rest = MarketData(prices=full[(dates > middle) & (dates <= end)])
    update_market_dataset(engine=engine, name="spx", data=rest)
    engine.dispose()

    at = _open("evaluate.py", run=str(run_id))
    assert any(s.value == "Live against the backtest" for s in at.subheader)
    assert "7d: live rank IC of the stored forecasts against the backtest" in _titles(at)
    judged = [c.value for c in at.caption if "too few forecasts to judge" in c.value]
    assert [line[:3] for line in judged] == ["7d:", "30d"]  # one sentence per horizon
    drift = next(d.value for d in at.dataframe if "group" in d.value.columns)
    assert list(drift["group"]) == ["news", "policy", "macro", "stock"]
