"""The recommender's estimate before a run: its epochs and its baselines' evaluation."""

from __future__ import annotations

from core.recsys.config import recsys_configs
from core.recsys.synthetic import RecsysSpec, generate_recsys
from services.estimates import estimate_training
from storage import DataHome, open_engine
from storage.recsys import save_recsys_dataset


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
