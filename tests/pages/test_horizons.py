"""Horizons come from the dataset: one built for 5 and 20 days trains, evaluates, predicts and
shows 5d / 20d everywhere, with nothing of 7 or 30 days left over (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.market.config import DataConfig
from core.market.models import model_spec
from core.market.sources import synthetic_data
from services.datasets import store_market_dataset
from services.market.evaluation import load_evaluation, run_predictor
from services.market.runs import execute_run, start_run
from storage import DataHome, open_engine
from tests.pages.conftest import TINY

PAGES = Path(__file__).resolve().parents[2] / "pages"


@pytest.fixture
def short_horizons(data_home: DataHome) -> dict[str, int]:
    engine = open_engine(data_home.database_url)
    config = DataConfig(horizons=[5, 20])
    data = synthetic_data(
        ["AAA", "BBB", "CCC"], "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[5, 20]
    )
    store_market_dataset(engine=engine, name="short", data=data, config=config, description="")
    runs = {}
    for model in ("dual_tower", "lstm_attention"):
        spec = model_spec(model)
        training = spec.training_config_class.from_dict(
            {"epochs": 2, "batch_size": 64, "scheduler": {"warmup_epochs": 0}}, partial=True
        )
        runs[model] = start_run(
            engine=engine,
            model_name=model,
            dataset_name="short",
            training=training,
            model_config=spec.config_class.from_dict(TINY[model], partial=True),
            baselines=["majority", "linear", "oracle"],
        )
        summary = execute_run(engine=engine, home=data_home, run_id=runs[model], device="cpu")
        assert set(summary["test"]) == {"5d", "20d"}, summary
    engine.dispose()
    return runs


def test_a_dataset_with_5_and_20_day_horizons_trains_evaluates_and_predicts(
    data_home: DataHome, short_horizons: dict[str, int]
) -> None:
    engine = open_engine(data_home.database_url)
    for model, run_id in short_horizons.items():
        evaluation = load_evaluation(engine=engine, run_id=run_id)
        assert evaluation.horizons == [5, 20], model
        assert set(evaluation.report["reports"]["oracle"]) == {"5d", "20d"}
        predictor = run_predictor(engine=engine, run_id=run_id)
        assert predictor.horizons == [5, 20]
        assert predictor.model.config.horizons == [5, 20]
    engine.dispose()


def test_the_pages_show_the_datasets_horizons(
    data_home: DataHome, short_horizons: dict[str, int]
) -> None:
    evaluate = AppTest.from_file(str(PAGES / "evaluate.py"), default_timeout=120).run()
    assert not evaluate.exception, evaluate.exception
    assert evaluate.radio[0].options == ["5d", "20d"]
    charts = " ".join(chart.proto.spec for chart in evaluate.get("plotly_chart"))
    assert "Confusion matrix, 5d" in charts and "Confusion matrix, 20d" in charts
    for stale in ("Confusion matrix, 7d", "Confusion matrix, 30d", "_7d", "_30d"):
        assert stale not in charts, stale
    predict = AppTest.from_file(str(PAGES / "predict.py"), default_timeout=120).run()
    assert not predict.exception, predict.exception
    assert [m.label for m in predict.metric][:2] == ["5-day score", "20-day score"]
