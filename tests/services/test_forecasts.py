"""Forecasts on the bundled real S&P 500 / NASDAQ series: made as of a date D, followed once
an update brings the prices after D (every forecast whose horizon has passed joined, the live
IC equal to a direct computation from the stored forecasts and the prices), the same whether
or not rows after D are stored, and readable but not writable in a read-only deployment."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.forecast import BAND
from core.market.models import model_spec
from core.market.sources import MarketData, bundled_config, bundled_data
from services.access import ReadOnlyError
from services.datasets import save_market_dataset
from services.market.evaluation import load_evaluation
from services.market.forecasts import follow_run, forecast_run, latest_forecasts
from services.market.runs import execute_run, start_run
from services.market.updates import update_market_dataset
from storage import DataHome
from storage.db import StorageError
from storage.feature_store import load_dataset_frame
from storage.forecasts import list_forecasts
from storage.repository import list_datasets, session_scope

D = pd.Timestamp("2018-06-29")
LATER_TRADING_DAYS = 40
LIVE_STAGES = (5, 10, 15)
"""Live forecasts as of D and D + 5, 10, 15 trading days, each after the update that day."""
TINY = {
    "context_tower": {"hidden_dims": [8], "embedding_dim": 4},
    "stock_tower": {"hidden_dims": [8], "embedding_dim": 4},
    "head": {"hidden_dims": [4]},
}


@pytest.fixture
def backend() -> str:
    return "duckdb"  # one backend: the PostgreSQL path of these tables is the same SQL


def bundled_until(end: pd.Timestamp) -> MarketData:
    """The bundled series with prices up to ``end`` (the macro series as bundled)."""
    data = bundled_data()
    prices = data.prices[pd.to_datetime(data.prices["date"]) <= end]
    recipe = {**data.recipe, "prices_until": str(end.date())}  # not the full series' recipe
    return MarketData(prices=prices, macro_series=data.macro_series, recipe=recipe)


def train_small(engine: Engine, home: DataHome, dataset: str) -> int:
    spec = model_spec("dual_tower")
    run_id = start_run(
        engine=engine,
        model_name="dual_tower",
        dataset_name=dataset,
        training=spec.training_config_class.from_dict(
            {"epochs": 2, "batch_size": 64, "scheduler": {"warmup_epochs": 0}}, partial=True
        ),
        model_config=spec.config_class.from_dict(TINY, partial=True),
        baselines=["majority"],
    )
    execute_run(engine=engine, home=home, run_id=run_id, device="cpu")
    return run_id


def store(engine: Engine, name: str, data: MarketData) -> None:
    save_market_dataset(
        engine=engine, name=name, data=data, config=bundled_config(DataConfig()), description=""
    )


def direct_ic(forecasts: pd.DataFrame, prices: pd.DataFrame, horizon: int) -> tuple:
    """(IC, long/short): over as-of dates, the mean Pearson correlation across tickers of
    the score and the log return from the as-of close to the last close on or before as-of
    + horizon days, and the mean return of half long the higher-scored ticker, half short
    the other (the market-neutral weights of two tickers)."""
    closes = prices.assign(date=pd.to_datetime(prices["date"])).set_index(["ticker", "date"])
    correlations, spreads = [], []
    for as_of, group in forecasts[forecasts["horizon"] == horizon].groupby("as_of"):
        returns = []
        for ticker in group["ticker"]:
            series = closes.loc[ticker]["close"]
            end = series[series.index <= pd.Timestamp(as_of) + pd.Timedelta(days=horizon)]
            returns.append(np.log(end.iloc[-1] / series.loc[pd.Timestamp(as_of)]))
        if np.ptp(group["score"]) > 0 and np.ptp(returns) > 0:  # dates without spread: no IC
            correlations.append(np.corrcoef(group["score"], returns)[0, 1])
        scores = group["score"].to_numpy()
        ordered = [r for _, r in sorted(zip(scores, returns, strict=True))]
        spreads.append(0.5 * (ordered[1] - ordered[0]) if np.ptp(scores) > 0 else 0.0)
    ic = float(np.mean(correlations)) if correlations else float("nan")
    return ic, float(np.mean(spreads))


@pytest.mark.slow
def test_forecasts_at_d_are_joined_to_their_outcomes_after_an_update(
    engine: Engine, data_home: DataHome
) -> None:
    store(engine, "spx", bundled_until(D))
    run_id = train_small(engine, data_home, "spx")
    made = forecast_run(engine=engine, run_id=run_id)
    with session_scope(engine) as session:
        frame = load_dataset_frame(session=session, name="spx")
    assert made["as_of"] == str(pd.to_datetime(frame["date"]).max().date()) == str(D.date())
    assert frame.loc[pd.to_datetime(frame["date"]) == D, "relevance_7d"].isna().all()
    assert {(r["ticker"], r["horizon"]) for r in made["forecasts"]} == {
        (t, h) for t in ("IXIC", "SPX") for h in (7, 30)
    }
    errors = load_evaluation(engine=engine, run_id=run_id).predictions
    for row in made["forecasts"]:  # the band is the score plus the test errors' quantiles
        h = row["horizon"]
        low, high = np.quantile((errors[f"relevance_{h}d"] - errors[f"score_{h}d"]).dropna(), BAND)
        assert row["band_low"] == pytest.approx(row["score"] + low)
        assert row["band_high"] == pytest.approx(row["score"] + high)
        assert row["target_date"] == str((D + pd.Timedelta(days=row["horizon"])).date())
    earlier = sorted(pd.to_datetime(frame["date"]).unique())[-60:-5:5]
    for as_of in earlier:  # as of dates in the test years: they repeat the backtest
        forecast_run(engine=engine, run_id=run_id, as_of=pd.Timestamp(as_of).date())

    full = bundled_data().prices
    dates = pd.to_datetime(full["date"])
    after = sorted(dates[dates > D].unique())
    end = pd.Timestamp(after[LATER_TRADING_DAYS - 1])
    previous = D
    for stage in (*LIVE_STAGES, LATER_TRADING_DAYS):  # updates as the days pass
        upto = pd.Timestamp(after[stage - 1])
        newer = full[(dates > previous) & (dates <= upto)]
        update = update_market_dataset(engine=engine, name="spx", data=MarketData(prices=newer))
        if stage != LATER_TRADING_DAYS:  # a forecast as of each newest day
            assert forecast_run(engine=engine, run_id=run_id)["as_of"] == str(upto.date())
        previous = upto
    assert update["end_after"] == str(end.date())
    with session_scope(engine) as session:
        names = {d.name for d in list_datasets(session=session)}
        stored = list_forecasts(session=session, run_id=run_id)
    assert {"spx", "spx@v1", "spx@v2"} <= names

    followed = follow_run(engine=engine, run_id=run_id)
    joined = pd.DataFrame(followed["joined"])
    assert (pd.to_datetime(joined["target_date"]) <= end).all(), "every horizon has passed"
    assert joined["outcome"].notna().all() and joined["forward_return"].notna().all()
    assert len(joined) == len(stored) == 2 * 2 * (1 + len(earlier) + len(LIVE_STAGES))
    assert followed["backtest"] == 2 * 2 * len(earlier) and followed["counted_from"] == str(
        D.date()
    )
    live_forecasts = pd.DataFrame(
        [
            {"as_of": f.as_of, "ticker": f.ticker, "horizon": f.horizon, "score": f.score}
            for f in stored
            if pd.Timestamp(f.as_of) >= D
        ]
    )
    prices = bundled_data().prices
    for h in (7, 30):
        live = followed["horizons"][f"{h}d"]
        assert live["joined"] == 2 * (1 + len(LIVE_STAGES)) and live["as_of_dates"] == 4
        expected, spread = direct_ic(live_forecasts, prices, h)
        if np.isnan(expected):  # no as-of date whose scores differ across tickers: no IC
            assert live["ic"] is None
        else:
            assert live["ic"] == pytest.approx(expected, abs=1e-9)
        assert live["long_short"] == pytest.approx(spread, abs=1e-12)
        assert live["status"] == "too few" and "4 as-of dates" in live["sentence"]
    assert any(followed["horizons"][f"{h}d"]["ic"] is not None for h in (7, 30))
    drift = followed["drift"]
    assert drift["basis"].startswith(f"the rows after {D.date()}") and drift["live_rows"] == 80
    assert drift["groups"]["stock"]["psi"] > 0 and drift["groups"]["news"]["psi"] is None


@pytest.mark.slow
def test_a_forecast_as_of_d_is_the_same_whether_or_not_later_rows_are_stored(
    engine: Engine, data_home: DataHome
) -> None:
    store(engine, "until_d", bundled_until(D))
    store(engine, "everything", bundled_data())
    run_id = train_small(engine, data_home, "until_d")
    cut = forecast_run(engine=engine, run_id=run_id)
    with_later = forecast_run(engine=engine, run_id=run_id, dataset="everything", as_of=D.date())
    assert cut["as_of"] == with_later["as_of"] == str(D.date())
    keys = ("ticker", "horizon", "score", "predicted_class", "probabilities", "band_low")
    assert [[r[k] for k in keys] for r in cut["forecasts"]] == [
        [r[k] for k in keys] for r in with_later["forecasts"]
    ]


@pytest.mark.slow
def test_a_read_only_deployment_reads_forecasts_and_cannot_make_or_update(
    engine: Engine, data_home: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    store(engine, "spx", bundled_until(D))
    run_id = train_small(engine, data_home, "spx")
    made = forecast_run(engine=engine, run_id=run_id)
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    assert latest_forecasts(engine=engine, run_id=run_id)["forecasts"] == made["forecasts"]
    with pytest.raises(ReadOnlyError):
        forecast_run(engine=engine, run_id=run_id)
    with pytest.raises(ReadOnlyError):
        update_market_dataset(engine=engine, name="spx", data=bundled_until(D))


def test_an_update_of_a_dataset_stored_without_raw_inputs_is_refused_with_the_reason(
    engine: Engine,
) -> None:
    store(engine, "spx", bundled_until(pd.Timestamp("2016-12-30")))
    with session_scope(engine) as session:
        session.connection().exec_driver_sql("DROP TABLE dataset_1_prices")
    with pytest.raises(StorageError, match="before Trendlab kept raw inputs"):
        update_market_dataset(engine=engine, name="spx", data=bundled_until(D))
    with session_scope(engine) as session:
        assert [d.name for d in list_datasets(session=session)] == ["spx"]


def test_an_update_replaces_repeated_price_rows_and_keeps_earlier_rows_as_they_were(
    engine: Engine,
) -> None:
    first = pd.Timestamp("2016-12-30")
    store(engine, "spx", bundled_until(first))
    full = bundled_data().prices
    dates = pd.to_datetime(full["date"])
    overlap = full[(dates > first - pd.Timedelta(days=7)) & (dates <= pd.Timestamp("2017-03-31"))]
    result = update_market_dataset(engine=engine, name="spx", data=MarketData(prices=overlap))
    repeated = int((pd.to_datetime(overlap["date"]) <= first).sum())
    assert result["replaced_price_rows"] == repeated > 0
    with session_scope(engine) as session:
        before = load_dataset_frame(session=session, name="spx@v1")
        after = load_dataset_frame(session=session, name="spx")
    assert pd.to_datetime(after["date"]).max() == pd.Timestamp("2017-03-31")
    from core.market.features import FEATURES

    features = [c for c in FEATURES if c in before.columns]
    assert len(features) > 60
    old = after[pd.to_datetime(after["date"]) <= first].reset_index(drop=True)
    pd.testing.assert_frame_equal(old[features], before[features], check_dtype=False)
    labelled = old.loc[pd.to_datetime(old["date"]) > first - pd.Timedelta(days=7), "trend_7d"]
    assert labelled.notna().all(), "the update completes the last week's forward windows"


def test_forecasts_of_an_unknown_run_and_an_empty_history(engine: Engine) -> None:
    from services.runs import UnknownRun

    with pytest.raises(UnknownRun):
        latest_forecasts(engine=engine, run_id=99)
    with pytest.raises(UnknownRun):
        forecast_run(engine=engine, run_id=99, as_of=dt.date(2018, 1, 2))


def test_an_update_on_another_price_basis_rescales_the_stored_history(engine: Engine) -> None:
    """Adjusted closes fetched after a dividend are lower for every past day: the stored
    prices are put on the update's basis, so no false return appears at the seam."""
    first = pd.Timestamp("2016-12-30")
    store(engine, "spx", bundled_until(first))
    full = bundled_data().prices
    dates = pd.to_datetime(full["date"])
    newer = full[(dates > first - pd.Timedelta(days=7)) & (dates <= pd.Timestamp("2017-02-28"))]
    adjusted = newer.assign(**{c: newer[c] * 0.98 for c in ("open", "high", "low", "close")})
    result = update_market_dataset(engine=engine, name="spx", data=MarketData(prices=adjusted))
    assert result["rescaled"] == {"IXIC": pytest.approx(0.98), "SPX": pytest.approx(0.98)}
    with session_scope(engine) as session:
        after = load_dataset_frame(session=session, name="spx")
    seam = after[after["ticker"] == "SPX"].set_index("date")["ret_1d"]
    assert abs(seam.loc[pd.Timestamp("2017-01-03")]) < 0.02, "no false -2 % at the seam"


def test_an_earlier_version_cannot_be_updated_and_the_suffix_is_reserved(engine: Engine) -> None:
    store(engine, "spx", bundled_until(pd.Timestamp("2016-12-30")))
    full = bundled_data().prices
    newer = full[pd.to_datetime(full["date"]).between("2017-01-01", "2017-01-31")]
    update_market_dataset(engine=engine, name="spx", data=MarketData(prices=newer))
    with pytest.raises(StorageError, match="an earlier version"):
        update_market_dataset(engine=engine, name="spx@v1", data=MarketData(prices=newer))
    with pytest.raises(StorageError, match="names ending in @v and a number are kept"):
        store(engine, "mine@v3", bundled_until(pd.Timestamp("2016-06-30")))


def test_the_live_judgement_needs_enough_dates_and_its_own_interval_to_clear() -> None:
    from services.market.forecasts import MIN_LIVE_DATES, judged, live_interval

    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2024-01-01", periods=60, freq="W-FRI")
    noisy = pd.DataFrame({"as_of": dates, "rank_ic": rng.normal(0.0, 0.5, len(dates))})
    low, high = live_interval(noisy, 7)
    assert low < 0 < high and high - low > 0.15  # sixty noisy weeks: a wide interval
    figures = {"as_of_dates": 60, "joined": 600, "rank_ic": float(noisy["rank_ic"].mean())}
    near = judged({**figures, "live_low": low, "live_high": high}, 0.05, 0.10, 7)
    assert near["status"] == "inside", near["sentence"]
    far = judged({**figures, "live_low": -0.4, "live_high": -0.2, "rank_ic": -0.3}, 0.05, 0.1, 7)
    assert far["status"] == "left" and "below it" in far["sentence"]
    few = judged({**figures, "as_of_dates": MIN_LIVE_DATES - 1}, 0.05, 0.1, 7)
    assert few["status"] == "too few"
