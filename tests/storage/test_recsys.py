"""Recommender datasets and runs in storage: one transaction, the registry, the active run."""

from __future__ import annotations

import pandas as pd
import pytest

from core.recsys.config import recsys_configs
from core.recsys.synthetic import RecsysSpec, generate_recsys
from services.recsys.runs import train_recsys_run
from services.recsys.serving import active_run, load_serving, recommender_runs, set_active_run
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
    from services.reports import epoch_curves

    curves = epoch_curves(engine=engine, run_ids=[first])  # what the Train page's live view plots
    ndcg = curves[(curves["split"] == "val") & (curves["name"] == "ndcg@10")]
    assert sorted(ndcg["epoch"]) == [1, 2], "validation NDCG@10 for every epoch"


def _atomic_files(folder) -> None:
    """A small RecBole-style data set: tab separated, typed headers, Unix seconds."""
    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=600, seed=3))
    stars = {"view": 3, "click": 3, "like": 4, "favorite": 5, "apply": 5, "interest": 5}
    events = data.interactions[data.interactions["interaction"] != "dislike"]
    pd.DataFrame(
        {
            "user_id:token": events["user_id"],
            "item_id:token": events["item_id"],
            "rating:float": events["interaction"].map(stars),
            "timestamp:float": events["timestamp"].astype("int64") // 10**6,
        }
    ).to_csv(folder / "tiny.inter", sep="\t", index=False)
    pd.DataFrame(
        {
            "item_id:token": data.items["item_id"],
            "sector:token": data.items["sector"],
            "skills:token_seq": data.items["skills"].str.replace(";", " "),
        }
    ).to_csv(folder / "tiny.item", sep="\t", index=False)


def test_the_cli_imports_atomic_files_and_trains_with_json_on_stdout_only(
    data_home: DataHome, tmp_path
) -> None:
    import json

    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    _atomic_files(tmp_path)
    args = ["recsys", "import", "tiny", "--interactions", str(tmp_path / "tiny.inter")]
    imported = runner.invoke(app, [*args, "--positive-threshold", "4"])
    assert imported.exit_code == 0, imported.output
    assert "tiny.inter, tiny.item: separator 'tab', timestamps as Unix seconds (UTC)" in (
        imported.stdout
    )
    assert "Left out 310 ratings below 4" in imported.stdout
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("hidden_dims: [16]\nembedding_dim: 8\nid_dim: 8\nepochs: 2\n")
    train = ["recsys", "train", "--dataset", "tiny", "--config", str(tiny), "--split", "random"]
    trained = runner.invoke(app, [*train, "--json"])
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.stdout)  # stdout holds the JSON and nothing else
    assert summary["epochs"] == 2 and "ndcg@10" in summary["test"]
    assert "split by random" in trained.stderr
    assert "epoch   1/2" in trained.stderr and "ndcg@10" in trained.stderr
    assert "batch" in trained.stderr, "the progress bar"
    assert "least-squares sweep 1/10: validation ndcg@10" in trained.stderr
    assert "stopped after 2 epochs (epochs); " in trained.stderr
    assert "the best, epoch" in trained.stderr or "the least-squares ids, which are kept" in (
        trained.stderr
    )
    after = trained.stderr.split("stopped after 2 epochs")[1]
    assert "evaluating two_tower" in after and "batch/s" not in after, "the bar ends with training"


def test_the_cli_refuses_a_mixed_timestamp_column_and_stores_nothing(
    data_home: DataHome, engine, tmp_path
) -> None:
    from typer.testing import CliRunner

    from cli import app
    from storage.repository import count_rows

    events = tmp_path / "events.csv"
    events.write_text(
        "user_id;item_id;rating;timestamp\n"
        "u1;m1;5;1700000000\n"
        "u1;m2;4;2023-11-15T10:00:00\n"
        "u2;m1;3;1700000100\n"
    )
    result = CliRunner().invoke(
        app,
        ["recsys", "import", "mixed", "--interactions", str(events), "--positive-threshold", "4"],
    )
    assert result.exit_code == 1
    assert (
        "events.csv, line 3, column 'timestamp': '2023-11-15T10:00:00' reads as ISO 8601 dates, "
        "but the column holds Unix seconds (UTC) (line 2: '1700000000')" in result.stderr
    )
    with session_scope(engine) as session:
        assert count_rows(session=session)["datasets"] == 0, "nothing stored"
