"""A data home with real trained runs (a tiny dual tower and a tiny attention LSTM), built once
per session; tests that alter files train their own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.models import model_spec
from core.market.sources import synthetic_data
from services.datasets import save_market_dataset
from services.estimates import Estimate
from services.market.runs import execute_run, start_run
from storage import DataHome, open_engine

TINY = {
    "dual_tower": {
        "context_tower": {"hidden_dims": [8], "embedding_dim": 4},
        "stock_tower": {"hidden_dims": [8], "embedding_dim": 4},
        "head": {"hidden_dims": [4]},
    },
    "lstm_attention": {"hidden_dim": 8, "num_lstm_layers": 1, "head_hidden_dims": [8]},
}


def store_small_dataset(engine: Engine) -> None:
    data = synthetic_data(
        ["AAA", "BBB", "CCC"], "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    save_market_dataset(engine=engine, name="small", data=data, config=DataConfig(), description="")


def train_tiny(engine: Engine, home: DataHome, model: str) -> int:
    spec = model_spec(model)
    training = spec.training_config_class.from_dict(
        {"epochs": 2, "batch_size": 64, "scheduler": {"warmup_epochs": 0}}, partial=True
    )
    run_id = start_run(
        engine=engine,
        model_name=model,
        dataset_name="small",
        training=training,
        model_config=spec.config_class.from_dict(TINY[model], partial=True),
        baselines=["majority", "momentum", "linear", "oracle"],
    )
    execute_run(engine=engine, home=home, run_id=run_id, device="cpu")
    return run_id


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run 1: dual_tower, run 2: lstm_attention, both on dataset 'small'. Read-only."""
    home = DataHome(tmp_path_factory.mktemp("trained")).ensure()
    engine = open_engine(home.database_url)
    store_small_dataset(engine)
    for model in ("dual_tower", "lstm_attention"):
        train_tiny(engine, home, model)
    engine.dispose()
    return home.root


@pytest.fixture
def trained(trained_home: Path, monkeypatch: pytest.MonkeyPatch) -> DataHome:
    monkeypatch.setenv("TRENDLAB_HOME", str(trained_home))
    monkeypatch.delenv("TRENDLAB_DB_URL", raising=False)
    monkeypatch.setenv("TRENDLAB_JOB_RUNNER", "0")
    return DataHome.from_env()


@pytest.fixture
def fixed_estimate(monkeypatch: pytest.MonkeyPatch) -> Estimate:
    """The Train page's estimate as a fixed figure instead of measured training steps (5-20 s a
    new set of settings), for tests of what the form does with a file or a click; the
    measurement itself is tested in tests/services/test_estimates.py and by
    ``test_a_preset_sets_epochs_and_size_and_the_estimate_shows_before_the_job``."""
    fixed = Estimate(
        seconds_per_epoch=1.0, epochs=1, evaluation_seconds=1.0, measured="fixed by the test"
    )
    monkeypatch.setattr(
        "services.registry.estimate_training",
        lambda **settings: fixed.for_training(settings["training"]),
    )
    return fixed
