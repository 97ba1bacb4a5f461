"""The Recommend page on a real recommender dataset, before and after a model is trained."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.recsys.config import recsys_configs
from core.recsys.engines import ENGINES
from core.recsys.synthetic import RecsysSpec, generate_recsys
from services.recsys.runs import train_recsys_run
from services.recsys.serving import load_serving
from services.runs import run_directory
from storage import DataHome, open_engine
from storage.db import StorageError
from storage.recsys import load_recsys_data, save_recsys_dataset
from storage.repository import session_scope

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "recommend.py")
TINY, TINY_TRAINING = recsys_configs({"hidden_dims": [16], "embedding_dim": 8, "epochs": 2})
CELL = r"(\d\.\d{3}) \((\d\.\d{3})\.\.(\d\.\d{3})\)"
"""A metric with its 95 % interval in one cell: ``0.247 (0.176..0.325)``."""


@pytest.fixture
def home(data_home: DataHome) -> DataHome:
    engine = open_engine(data_home.database_url)
    data = generate_recsys(RecsysSpec(users=50, items=40, interactions=800, seed=6))
    save_recsys_dataset(engine=engine, name="rs", data=data, description="test")
    engine.dispose()
    return data_home


def _open() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    return at


def _tables(at: AppTest, column: str) -> list:
    """The page's tables that have ``column``, in page order."""
    return [d.value for d in at.dataframe if column in d.value.columns]


def _engines(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Engine:")]


def test_before_training_users_get_content_and_the_page_says_why(home: DataHome) -> None:
    at = _open()
    assert "No trained model yet" in at.caption[0].value
    assert _engines(at)[0].startswith("**Engine: content**")
    assert "no trained model is active" in _engines(at)[0] or "cold start" in _engines(at)[0]
    assert len(at.dataframe[0].value) == 10


def test_known_user_new_user_and_engine_comparison(home: DataHome) -> None:
    engine = open_engine(home.database_url)
    run_id, _ = train_recsys_run(
        engine=engine, home=home, dataset_name="rs", config=TINY, training=TINY_TRAINING
    )
    engine.dispose()
    at = _open()
    assert f"Serving recommender run {run_id}" in at.caption[0].value
    busiest = max(at.selectbox(key="user").options, key=lambda o: int(o.split(" · ")[1].split()[0]))
    at.selectbox(key="user").set_value(busiest.split(" · ")[0]).run()
    served = _report(home, run_id)["serve"]["engine"]
    assert f": {served} for warm and hot users" in at.caption[0].value
    assert _engines(at)[0].startswith(f"**Engine: {served}**")
    first = _tables(at, "why")[0]
    assert list(first["rank"]) == list(range(1, 11)) and first["why"].map(bool).all()
    at.selectbox(key="known:type").set_value("job").run()
    assert set(_tables(at, "why")[0]["item_id"]) <= set(home_items(home, "job")), (
        "the type filter holds"
    )

    form_skills = next(m for m in at.multiselect if m.label == "User skills")
    form_skills.set_value([form_skills.options[0]])
    next(m for m in at.multiselect if m.label == "User interests").set_value(["ai"])
    next(b for b in at.button if b.label == "Recommend").click().run()
    assert not at.exception, at.exception
    assert any(e.startswith("**Engine: content**") for e in _engines(at))
    new_table = _tables(at, "why")[1]
    assert new_table["why"].str.len().gt(0).all()

    offered = at.multiselect(key="compare-engines")
    served_ones = [name for name, entry in ENGINES.items() if entry.served]
    assert offered.options == served_ones, "the run stores a ranker; BPR is judged only"
    assert served in offered.value and offered.value == offered.options
    compared = _tables(at, "normalised")
    assert len(compared) == len(offered.value) and all(len(table) == 10 for table in compared)
    assert any("also in" in c.value for c in at.caption)
    registry = _tables(at, "active")[0]
    assert list(registry["run"]) == [run_id] and registry["active"].all()
    report = _tables(at, "ndcg@10")[-2]  # all users, then cold users
    assert {"two_tower", "popularity", "item_knn", "ease", "bpr"} <= set(report.index)
    for cell in report["ndcg@10"]:
        mean, low, high = map(float, re.fullmatch(CELL, cell).groups())
        assert low <= mean <= high
    verdict = next(m.value for m in at.markdown if m.value.startswith("**Verdict: "))
    assert _report(home, run_id)["comparison"]["sentence"] in verdict
    assert any(m.value.startswith("**Serves warm and hot users: ") for m in at.markdown)


def _report(home: DataHome, run_id: int) -> dict:
    return json.loads((run_directory(home, run_id) / "test_metrics.json").read_text())


def home_items(home: DataHome, kind: str) -> list[str]:
    engine = open_engine(home.database_url)
    with session_scope(engine) as session:
        items = load_recsys_data(session=session, name="rs").items
    engine.dispose()
    return items.loc[items["type"] == kind, "item_id"].tolist()


def test_a_truncated_checkpoint_is_named_by_run_not_path_and_the_page_keeps_working(
    home: DataHome,
) -> None:
    """Issue 23, item 8: a truncated best.pt stopped the whole page with an uncaught
    CheckpointError, and serving never checked the recorded checksum."""
    engine = open_engine(home.database_url)
    run_id, _ = train_recsys_run(
        engine=engine, home=home, dataset_name="rs", config=TINY, training=TINY_TRAINING
    )
    checkpoint = run_directory(home, run_id) / "best.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(StorageError) as refused:
        load_serving(engine=engine, home=home)
    engine.dispose()
    message = str(refused.value)
    assert f"run {run_id}" in message.lower() and str(home.root) not in message
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    assert any(f"run {run_id}" in i.value.lower() for i in [*at.info, *at.error])


@pytest.fixture
def trained(home: DataHome) -> int:
    engine = open_engine(home.database_url)
    run_id, _ = train_recsys_run(
        engine=engine, home=home, dataset_name="rs", config=TINY, training=TINY_TRAINING
    )
    engine.dispose()
    return run_id


def _lists(at: AppTest) -> list[list[str]]:
    return [table["name"].tolist() for table in _tables(at, "normalised")]


def test_engines_are_compared_for_a_user_picked_there_with_normalised_scores(
    home: DataHome, trained: int
) -> None:
    """Issue 39: the comparison had no user picker and raw scores of unlike scales."""
    at = _open()
    picker = at.selectbox(key="compare-user")
    assert picker.value == at.selectbox(key="user").value, "starts at the Known user's pick"
    before = _lists(at)
    picker.set_value(picker.options[-1].split(" · ")[0]).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="compare-user").value != at.selectbox(key="user").value
    assert _lists(at) != before, "another user, other lists"
    tables = _tables(at, "normalised")
    assert len(tables) == len(at.multiselect(key="compare-engines").value) > 1
    for table in tables:
        assert {"score", "normalised"} <= set(table.columns)
        assert table["normalised"].between(0, 100).all()
        assert table["normalised"].is_monotonic_decreasing
    at.multiselect(key="compare-engines").set_value(["content"]).run()
    assert len(_tables(at, "normalised")) == 1


def test_every_field_of_the_new_user_form_has_its_own_label(home: DataHome) -> None:
    """Issue 39: two fields were both labelled "location" (the user's and the items')."""
    at = _open()
    form = at.tabs[1]
    fields = [*form.selectbox, *form.multiselect, *form.text_area]
    labels = [f.label for f in fields]
    assert len(labels) == len(set(labels)) >= 5, labels
    assert {"User location", "Item location"} <= set(labels)
    assert all(f.help and "column" in f.help for f in fields)


def test_the_models_tab_shows_intervals_in_cells_and_whole_epochs(
    home: DataHome, trained: int
) -> None:
    """Issue 39: 30+ low/high columns, and an epoch axis reading 1, 1.5, 2."""
    at = _open()
    reports = [d.value for d in at.dataframe if d.value.index.name == "engine"]
    assert len(reports) == 2, "all users, then cold users"
    for report in reports:
        assert not [c for c in report.columns if c.endswith(("low", "high"))]
        assert report.columns[0] == "ndcg@10", "the primary metric first"
    assert all(re.fullmatch(CELL, cell) for cell in reports[0]["ndcg@10"])
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    axes = [v for k, v in figure["layout"].items() if k.startswith("xaxis")]
    assert axes and all(a["dtick"] == 1 and a["tickformat"] == "d" for a in axes)
