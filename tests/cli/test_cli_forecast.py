"""`trendlab forecast RUN --json`, `trendlab follow RUN` and `trendlab data update` through
the command line, and GET /api/forecasts/latest answering the same numbers behind the same
token, in a deployment that may write and in a read-only one."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_api
from cli import app
from storage import DataHome, open_engine
from storage.feature_store import load_dataset_frame
from storage.repository import session_scope
from tests.pages.conftest import store_small_dataset, train_tiny

runner = CliRunner()


@pytest.fixture
def trained_run(data_home: DataHome, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("TRENDLAB_JOB_RUNNER", "0")
    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    engine.dispose()
    return run_id


def _last_date(home: DataHome, name: str) -> str:
    engine = open_engine(home.database_url)
    with session_scope(engine) as session:
        frame = load_dataset_frame(session=session, name=name)
    engine.dispose()
    return str(pd.to_datetime(frame["date"]).max().date())


def test_forecast_json_is_as_of_the_last_feature_date_and_the_api_answers_the_same(
    data_home: DataHome, trained_run: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = runner.invoke(app, ["forecast", str(trained_run), "--json"])
    assert made.exit_code == 0, made.output
    printed = json.loads(made.output)
    assert printed["as_of"] == _last_date(data_home, "small")
    assert len(printed["forecasts"]) == 3 * 2  # three tickers, two horizons
    monkeypatch.setenv("TRENDLAB_API_TOKEN", "t0ken")
    client = TestClient(create_api())
    route = f"/forecasts/latest?run_id={trained_run}"
    assert client.get(route).status_code == 401
    served = client.get(route, headers={"Authorization": "Bearer t0ken"})
    assert served.status_code == 200
    assert served.json()["forecasts"] == printed["forecasts"]
    assert served.json()["as_of"] == printed["as_of"]
    missing = client.get("/forecasts/latest?run_id=99", headers={"Authorization": "Bearer t0ken"})
    assert missing.status_code == 404
    text = runner.invoke(app, ["forecast", str(trained_run)])
    assert text.exit_code == 0 and f"as of {printed['as_of']}" in text.output
    followed = runner.invoke(app, ["follow", str(trained_run)])
    assert followed.exit_code == 0 and "too few forecasts to judge" in followed.output


def test_a_read_only_deployment_serves_forecasts_but_refuses_to_make_or_update(
    data_home: DataHome, trained_run: int, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    assert runner.invoke(app, ["forecast", str(trained_run)]).exit_code == 0
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    served = TestClient(create_api()).get(f"/forecasts/latest?run_id={trained_run}")
    assert served.status_code == 200 and len(served.json()["forecasts"]) == 6
    refused = runner.invoke(app, ["forecast", str(trained_run)])
    assert refused.exit_code == 1 and "Read-only deployment" in refused.output
    prices = tmp_path / "prices.csv"
    pd.DataFrame(
        {
            "date": ["2021-01-04"],
            "ticker": ["AAA"],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "volume": [1.0],
        }
    ).to_csv(prices, index=False)
    update = runner.invoke(app, ["data", "update", "small", "--prices", str(prices)])
    assert update.exit_code == 1 and "Read-only deployment" in update.output


def test_a_bad_as_of_date_and_an_unknown_dataset_fail_with_the_reason(trained_run: int) -> None:
    bad = runner.invoke(app, ["forecast", str(trained_run), "--as-of", "yesterday"])
    assert bad.exit_code == 1 and "--as-of 'yesterday' is not a date" in bad.output
    unknown = runner.invoke(app, ["forecast", str(trained_run), "--dataset", "nothing"])
    assert unknown.exit_code == 1 and "No dataset named 'nothing'" in unknown.output
    early = runner.invoke(app, ["forecast", str(trained_run), "--as-of", "1990-01-01"])
    assert early.exit_code == 1 and "no rows on or before 1990-01-01" in early.output


def test_data_update_appends_newer_prices_and_follow_joins_the_outcomes(
    data_home: DataHome, trained_run: int, tmp_path
) -> None:
    from core.market.sources import synthetic_data

    assert runner.invoke(app, ["forecast", str(trained_run)]).exit_code == 0
    longer = synthetic_data(
        ["AAA", "BBB", "CCC"], "2016-01-01", "2021-03-31", seed=3, signal=True, horizons=[7, 30]
    ).prices
    newer = longer[pd.to_datetime(longer["date"]) > pd.Timestamp("2020-12-31")]
    path = tmp_path / "newer.csv.gz"
    newer.to_csv(path, index=False)
    updated = runner.invoke(app, ["data", "update", "small", "--prices", str(path), "--json"])
    assert updated.exit_code == 0, updated.output
    result = json.loads(updated.stdout)
    assert result["archived_as"] == "small@v1" and result["version"] == 2
    assert result["end_after"] == _last_date(data_home, "small") == "2021-03-31"
    assert result["rows_after"] == result["rows_before"] + len(newer)
    followed = runner.invoke(app, ["follow", str(trained_run), "--json"])
    joined = json.loads(followed.output)["joined"]
    assert len(joined) == 6 and all(row["outcome"] is not None for row in joined)
    again = json.loads(runner.invoke(app, ["forecast", str(trained_run), "--json"]).output)
    assert again["as_of"] == "2021-03-31"


def test_an_update_with_retrain_years_retrains_the_serving_run(
    data_home: DataHome, trained_run: int, tmp_path
) -> None:
    from core.market.sources import synthetic_data

    longer = synthetic_data(
        ["AAA", "BBB", "CCC"], "2016-01-01", "2021-03-31", seed=3, signal=True, horizons=[7, 30]
    ).prices
    dates = pd.to_datetime(longer["date"])
    first = tmp_path / "first.csv"
    longer[(dates > "2020-12-31") & (dates <= "2021-01-29")].to_csv(first, index=False)
    refused = runner.invoke(
        app, ["data", "update", "small", "--prices", str(first), "--retrain-years", "3"]
    )
    assert refused.exit_code == 1 and "no run serves 'small' yet" in refused.output
    named = runner.invoke(app, ["retrain", str(trained_run), "--window-years", "3", "--json"])
    assert named.exit_code == 0, named.output
    serving_now = json.loads(named.stdout)
    second = tmp_path / "second.csv"
    longer[dates > "2021-01-29"].to_csv(second, index=False)
    updated = runner.invoke(
        app, ["data", "update", "small", "--prices", str(second), "--retrain-years", "3"]
    )
    assert updated.exit_code == 0, updated.output
    assert "Updated 'small' to version 3" in updated.output
    assert "Retraining run" in updated.stderr and "retrain:" in updated.stderr  # progress
    assert f"Retrained as run {serving_now['candidate'] + 1}: " in updated.output
