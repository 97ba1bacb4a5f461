"""`trendlab recsys import` on logs as they come: what it read, left out and merged."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from storage import DataHome

runner = CliRunner()


def test_a_raw_purchase_log_imports_with_a_column_map_alone_and_says_what_it_left_out(
    data_home: DataHome, tmp_path: Path
) -> None:
    log = tmp_path / "transactions-raw.csv.gz"
    log.write_bytes(
        gzip.compress(
            b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
            b"536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
            b"536365,85123A,HEART,2,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
            b"536366,22633,WARMER,6,2010-12-01 08:28:00,1.85,,United Kingdom\n"
            b"C536379,85123A,HEART,-1,2010-12-01 09:41:00,2.55,17850.0,United Kingdom\n"
            b"536381,22139,RETROSPOT,2,2010-12-01 09:46:00,4.25,13047.0,United Kingdom\n"
        )
    )
    mapping = "user_id=CustomerID,item_id=StockCode,timestamp=InvoiceDate"
    result = runner.invoke(
        app, ["recsys", "import", "raw", "--interactions", str(log), "--map", mapping]
    )
    assert result.exit_code == 0, result.output
    assert "2 users, 2 items, 2 interactions" in result.output
    assert "Read every row as one purchase" in result.output
    assert "Left out 1 rows without a user or an item." in result.output
    assert "Left out 1 cancellations." in result.output
    assert "Merged 1 rows repeating a (user_id, item_id, timestamp)" in result.output


def test_a_ratings_file_says_how_it_read_the_ratings(data_home: DataHome, tmp_path: Path) -> None:
    inter = tmp_path / "ml.inter"
    inter.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "196\t242\t3\t881250949\n186\t302\t1\t891717742\n"
    )
    result = runner.invoke(app, ["recsys", "import", "ml", "--interactions", str(inter)])
    assert result.exit_code == 0, result.output
    assert "every rating as one positive interaction (like)" in result.output
    assert "--positive-threshold 4" in result.output


def test_importing_stored_content_under_a_new_name_says_no_dataset_was_created(
    data_home: DataHome, tmp_path: Path
) -> None:
    """Issue 41, item 10: it printed "Reused 'first'" and exited 0, and no dataset of the new
    name existed afterwards."""
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,timestamp\nu1,i1,2024-01-01\nu2,i1,2024-01-02\n")
    first = runner.invoke(app, ["recsys", "import", "first", "--interactions", str(events)])
    assert first.exit_code == 0 and "Stored 'first'" in first.output, first.output
    second = runner.invoke(app, ["recsys", "import", "second", "--interactions", str(events)])
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[0] == (
        "No dataset 'second' was created: the same data is stored as 'first'; use that name."
    )
    listed = json.loads(runner.invoke(app, ["data", "list", "--json"]).output)
    assert [d["name"] for d in listed] == ["first"]
    again = runner.invoke(app, ["recsys", "import", "first", "--interactions", str(events)])
    assert again.output.splitlines()[0] == "Dataset 'first' holds this data already; reused it."


def test_a_play_count_log_without_timestamps_imports_and_trains_on_the_random_split_only(
    data_home: DataHome, tmp_path: Path
) -> None:
    """Issue 38: a tab-separated play-count log (``userID``, ``artistID``, ``weight``; no
    timestamp) was refused for its missing timestamp column."""
    from core.recsys.synthetic import RecsysSpec, generate_recsys
    from storage import open_engine
    from storage.recsys import load_recsys_data
    from storage.repository import session_scope

    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=500, seed=3))
    pairs = data.interactions.drop_duplicates(["user_id", "item_id"])
    plays = (pairs.index.to_numpy() % 7) + 1
    log = tmp_path / "user_artists.dat"
    log.write_text(
        "userID\tartistID\tplays\n"
        + "".join(
            f"{u}\t{i}\t{p}\n"
            for u, i, p in zip(pairs["user_id"], pairs["item_id"], plays, strict=True)
        )
    )
    mapping = "user_id=userID,item_id=artistID,weight=plays"
    result = runner.invoke(
        app, ["recsys", "import", "music", "--interactions", str(log), "--map", mapping]
    )
    assert result.exit_code == 0, result.output
    assert "separator 'tab'" in result.output
    assert "no timestamp column" in result.output and "random split only" in result.output
    assert "Kept 'weight' as each event's weight." in result.output
    engine = open_engine(data_home.database_url)
    with session_scope(engine) as session:
        stored = load_recsys_data(session=session, name="music")
    engine.dispose()
    assert stored.recipe["timestamps"] is False
    weights = stored.interactions.set_index(["user_id", "item_id"])["amount"]
    expected = dict(zip(zip(pairs["user_id"], pairs["item_id"], strict=True), plays, strict=True))
    assert {key: float(value) for key, value in weights.items()} == {
        key: float(value) for key, value in expected.items()
    }

    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("hidden_dims: [16]\nembedding_dim: 8\nepochs: 1\nals_sweeps: 1\n")
    refused = runner.invoke(
        app, ["recsys", "train", "--dataset", "music", "--config", str(tiny), "--split", "time"]
    )
    assert refused.exit_code == 1
    assert "without a timestamp column" in refused.output and "--split random" in refused.output
    assert "Traceback" not in refused.output
    trained = runner.invoke(
        app,
        ["recsys", "train", "--dataset", "music", "--config", str(tiny), "--split", "random"],
    )
    assert trained.exit_code == 0, trained.output
    assert "two_tower" in trained.output
