"""Rolling retrains judged by the verdict: on the no-signal control no new run is promoted
over five updates; on the planted market a run trained on more years replaces a serving run
trained on one; every decision is recorded with its reason; a read-only deployment cannot
retrain."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.models import model_spec
from core.market.sources import MarketData, synthetic_data
from services.access import ReadOnlyError
from services.datasets import save_market_dataset
from services.market.rolling import promotion_table, retrain_here, serving, start_retrain
from services.market.runs import execute_run, start_run
from services.market.updates import update_market_dataset
from storage import DataHome

SEED = 1
TICKERS = ["AAA", "BBB", "CCC", "DDD", "EEE"]
TINY = {
    "context_tower": {"hidden_dims": [8], "embedding_dim": 4},
    "stock_tower": {"hidden_dims": [8], "embedding_dim": 4},
    "head": {"hidden_dims": [4]},
}
PARTS = ("prices", "headlines", "policy_events", "macro_series", "oracle")


@pytest.fixture
def backend() -> str:
    return "duckdb"


def between(data: MarketData, start: str | None, end: str) -> MarketData:
    """``data``'s records dated after ``start`` (None: from the first) up to ``end``."""

    def cut(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None:
            return None
        dates = pd.to_datetime(frame["date"])
        keep = dates <= pd.Timestamp(end)
        if start is not None:
            keep &= dates > pd.Timestamp(start)
        return frame[keep]

    recipe = {**data.recipe, "until": end}
    return MarketData(**{part: cut(getattr(data, part)) for part in PARTS}, recipe=recipe)


def train_serving(engine: Engine, home: DataHome, start_date: str | None, epochs: int) -> int:
    spec = model_spec("dual_tower")
    run_id = start_run(
        engine=engine,
        model_name="dual_tower",
        dataset_name="market",
        training=spec.training_config_class.from_dict(
            {"epochs": epochs, "batch_size": 64, "scheduler": {"warmup_epochs": 0}, "seed": SEED},
            partial=True,
        ),
        model_config=spec.config_class.from_dict(TINY, partial=True),
        baselines=["majority"],
        window={"start_date": start_date} if start_date else None,
    )
    execute_run(engine=engine, home=home, run_id=run_id, device="cpu")
    return run_id


@pytest.mark.slow
def test_on_the_no_signal_control_five_updates_promote_no_new_run(
    engine: Engine, data_home: DataHome
) -> None:
    data = synthetic_data(
        TICKERS, "2014-01-01", "2019-12-31", seed=5, signal=False, horizons=[7, 30]
    )
    save_market_dataset(
        engine=engine,
        name="market",
        data=between(data, None, "2018-12-31"),
        config=DataConfig(),
        description="",
    )
    served = train_serving(engine, data_home, None, epochs=4)
    ends = ["2019-02-28", "2019-04-30", "2019-06-30", "2019-08-31", "2019-10-31"]
    decisions = []
    for start, end in zip(["2018-12-31", *ends[:-1]], ends, strict=True):
        update_market_dataset(engine=engine, name="market", data=between(data, start, end))
        decisions.append(
            retrain_here(engine=engine, home=data_home, serving_run_id=served, window_years=3)
        )
    assert not any(d["promoted"] for d in decisions), [d["reason"] for d in decisions]
    assert all(d["verdict"] in ("no evidence", "collapsed", "too few periods") for d in decisions)
    assert serving(engine=engine, dataset="market")["run_id"] == served
    table = promotion_table(engine=engine, dataset="market")
    assert len(table) == 5 and table["reason"].str.startswith(f"kept run {served}").all()


@pytest.mark.slow
def test_on_the_planted_market_a_longer_window_replaces_a_one_year_serving_run(
    engine: Engine, data_home: DataHome
) -> None:
    data = synthetic_data(
        TICKERS, "2015-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    save_market_dataset(
        engine=engine,
        name="market",
        data=between(data, None, "2019-06-30"),
        config=DataConfig(),
        description="",
    )
    served = train_serving(engine, data_home, "2018-06-30", epochs=20)
    update_market_dataset(
        engine=engine, name="market", data=between(data, "2019-06-30", "2020-12-31")
    )
    decision = retrain_here(engine=engine, home=data_home, serving_run_id=served, window_years=5)
    assert decision["promoted"] and decision["verdict"] == "beats", decision["reason"]
    assert serving(engine=engine, dataset="market")["run_id"] == decision["candidate"]
    assert decision["reason"].startswith("promoted: the model beats")


def test_a_read_only_deployment_cannot_retrain(engine: Engine, monkeypatch) -> None:
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    with pytest.raises(ReadOnlyError):
        start_retrain(engine=engine, serving_run_id=1, window_years=3)
