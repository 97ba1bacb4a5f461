"""Recommender datasets and runs in storage: one transaction, the registry, the active run."""

from __future__ import annotations

import pandas as pd
import pytest

from core.recsys.config import recsys_configs
from core.recsys.synthetic import RecsysSpec, generate_recsys
from services.recsys import (
    active_run,
    load_serving,
    recommender_runs,
    set_active_run,
    train_recsys_run,
)
from storage import DataHome
from storage.db import StorageError
from storage.recsys import load_recsys_data, save_recsys_dataset
from storage.repository import delete_dataset, session_scope

TINY, TINY_TRAINING = recsys_configs({"hidden_dims": [16], "embedding_dim": 8, "epochs": 2})


def test_a_dataset_round_trips_and_identical_recipes_are_reused(engine) -> None:
    data = generate_recsys(RecsysSpec(users=30, items=20, interactions=300, seed=1))
    stored, reused = save_recsys_dataset(engine=engine, name="rs", data=data, description="t")
    assert not reused and stored.kind == "recsys" and stored.row_count == 300
    with session_scope(engine) as session:
        loaded = load_recsys_data(session=session, name="rs")
    pd.testing.assert_frame_equal(
        loaded.interactions.reset_index(drop=True),
        data.interactions.sort_values(["timestamp", "user_id", "item_id"], ignore_index=True),
        check_dtype=False,
    )
    assert save_recsys_dataset(engine=engine, name="again", data=data, description="t")[1]
    missing = pytest.raises(StorageError, match="No recommender dataset named 'demo'")
    with missing, session_scope(engine) as session:
        load_recsys_data(session=session, name="demo")
    with session_scope(engine) as session:
        assert delete_dataset(session=session, name="rs")
    with engine.connect() as conn:
        tables = set(
            conn.exec_driver_sql("SELECT table_name FROM information_schema.tables").scalars()
        )
    assert not any(t.startswith(f"dataset_{stored.id}") for t in tables)


def test_runs_are_registered_and_one_is_active(engine, data_home: DataHome) -> None:
    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=500, seed=2))
    save_recsys_dataset(engine=engine, name="rs", data=data, description="t")
    first, summary = train_recsys_run(
        engine=engine, home=data_home, dataset_name="rs", config=TINY, training=TINY_TRAINING
    )
    second, _ = train_recsys_run(
        engine=engine, home=data_home, dataset_name="rs", config=TINY, training=TINY_TRAINING
    )
    assert summary["epochs"] == 2 and "ndcg@10" in summary["test"]
    registry = recommender_runs(engine=engine)
    assert [r["run"] for r in registry] == [second, first]
    assert registry[0]["active"] and registry[0]["size_mb"] > 0
    assert active_run(engine=engine) == second
    set_active_run(engine=engine, run_id=first)
    assert active_run(engine=engine) == first
    with pytest.raises(StorageError, match="not a finished recommender run"):
        set_active_run(engine=engine, run_id=999)
    serving = load_serving(engine=engine, home=data_home)
    user = data.interactions["user_id"].iloc[0]
    assert len(serving.recommend(user, limit=5).items) == 5
