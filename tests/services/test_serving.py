"""The recommender a request is served from: one database session and one cache lookup per
request once it is built (issue 40), and files checked when it is built."""

from __future__ import annotations

import contextlib

import pytest

from core.recsys.config import recsys_configs
from core.recsys.synthetic import RecsysSpec, generate_recsys
from services.recsys import serving as recsys
from services.recsys.runs import train_recsys_run
from storage import DataHome, StorageError, open_engine
from storage.recsys import save_recsys_dataset


def trained_recommender(engine, home: DataHome, seed: int):
    """A tiny recommender dataset 'rs' and one trained run on it: (the data, the run id)."""
    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=500, seed=seed))
    save_recsys_dataset(engine=engine, name="rs", data=data, description="test")
    config, training = recsys_configs({"hidden_dims": [8], "embedding_dim": 4, "epochs": 1})
    run_id, _ = train_recsys_run(
        engine=engine, home=home, dataset_name="rs", config=config, training=training
    )
    return data, run_id


def test_a_request_opens_one_session_once_the_recommender_is_built(
    data_home: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_engine(data_home.database_url)
    _, run_id = trained_recommender(engine, data_home, seed=2)
    first = recsys.serving(engine=engine, home=data_home)
    assert first.run_id == run_id
    opened = []
    real = recsys.session_scope

    @contextlib.contextmanager
    def counted(bound):
        opened.append(1)
        with real(bound) as session:
            yield session

    monkeypatch.setattr(recsys, "session_scope", counted)
    again = recsys.serving(engine=engine, home=data_home)
    assert again.recommender is first.recommender and len(opened) == 1
    engine.dispose()


def test_a_run_whose_checkpoint_was_replaced_is_refused_when_built(data_home: DataHome) -> None:
    engine = open_engine(data_home.database_url)
    _, run_id = trained_recommender(engine, data_home, seed=4)
    checkpoint = next((data_home.checkpoints / f"run_{run_id}").glob("*.pt"))
    checkpoint.write_bytes(checkpoint.read_bytes() + b"tampered")
    with pytest.raises(StorageError, match="not the file training wrote"):
        recsys.serving(engine=engine, home=data_home)
    engine.dispose()
