"""The recommender's estimate before a run: its epochs and its baselines' evaluation."""

from __future__ import annotations

import pytest

from core.recsys.config import recsys_configs
from core.recsys.synthetic import RecsysSpec, generate_recsys
from services.estimates import worker_start_seconds
from services.registry import estimate_training
from storage import DataHome, open_engine
from storage.recsys import save_recsys_dataset


@pytest.fixture
def backend() -> str:
    """DuckDB only: what is measured here (a registration, an estimate) does not depend on
    where the metadata lives, and each run trains or times a model."""
    return "duckdb"


def test_the_recommender_estimate_adds_the_baselines_to_the_epochs(data_home: DataHome) -> None:
    engine = open_engine(data_home.database_url)
    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=500, seed=1))
    save_recsys_dataset(engine=engine, name="rs", data=data, description="test")
    config, training = recsys_configs({"hidden_dims": [16], "embedding_dim": 8, "epochs": 4})
    found = estimate_training(
        engine=engine,
        model_name="two_tower",
        dataset_name="rs",
        model_config=config,
        training=training,
    )
    engine.dispose()
    assert found.epochs == 4 and found.seconds_per_epoch > 0
    assert found.seconds > 4 * found.seconds_per_epoch, "the baselines' fits are counted"
    assert "baselines about" in found.measured


def test_a_market_estimate_counts_the_evaluation_and_nothing_for_cached_baselines(
    data_home: DataHome,
) -> None:
    """Issue 37: the estimate covers training and the evaluation at its end; baselines the
    cache holds for the split cost nothing; epochs follow the config without re-measuring."""
    from core.market.models import model_spec
    from services.market.evaluation import evaluate_run
    from tests.pages.conftest import store_small_dataset, train_tiny

    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    spec = model_spec("dual_tower")
    training = spec.training_config_class.from_dict(
        {"epochs": 2, "batch_size": 64, "scheduler": {"warmup_epochs": 0}}, partial=True
    )

    def estimate():
        return estimate_training(
            engine=engine,
            model_name="dual_tower",
            dataset_name="small",
            model_config=spec.config_class(),
            training=training,
        )

    before = estimate()
    assert before.epochs == 2 and before.sizing is None, "a small dataset keeps its settings"
    assert before.evaluation_seconds > 0 and "fitting the baselines" in before.measured
    assert before.seconds == pytest.approx(
        before.start_up_seconds + before.training_seconds + before.evaluation_seconds
    )
    assert before.start_up_seconds > worker_start_seconds() > 0, "a job starts a worker"
    assert "start-up" in before.sentence() and "reading the dataset" in before.measured
    in_this_process = estimate_training(
        engine=engine,
        model_name="dual_tower",
        dataset_name="small",
        model_config=spec.config_class(),
        training=training,
        in_worker=False,
    )
    assert 0 < in_this_process.start_up_seconds < before.start_up_seconds
    longer = before.for_training(training.__class__.from_dict({**training.to_dict(), "epochs": 8}))
    assert longer.training_seconds == 4 * before.training_seconds
    run_id = train_tiny(engine, data_home, "dual_tower")
    evaluate_run(engine=engine, run_id=run_id)  # fits and caches every baseline
    after = estimate()
    engine.dispose()
    assert "already fitted" in after.measured
    assert after.evaluation_seconds < before.evaluation_seconds
