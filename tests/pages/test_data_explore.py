"""The Data page once datasets exist (issue 39): the build form folded away, every column of
the dataset table readable, label columns defined, and recommender datasets explorable."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.recsys.synthetic import RecsysSpec, generate_recsys
from storage.recsys import save_recsys_dataset
from tests.pages.conftest import store_small_dataset

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _data_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, at.exception
    return at


def test_the_build_form_folds_away_and_labels_are_defined_once_a_dataset_exists(
    engine: Engine,
) -> None:
    store_small_dataset(engine)
    at = _data_page()
    build = next(e for e in at.expander if e.label == "Build a dataset")
    assert build.proto.expanded is False
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["name", "kind", "rows"]
    assert table.loc[0, "tickers"] == "3: AAA, BBB, CCC"
    labels = next(
        frame.value for frame in at.dataframe if list(frame.value.columns) == ["label", "meaning"]
    )
    meanings = dict(zip(labels["label"], labels["meaning"], strict=True))
    assert {"trend_7d", "class_30d", "relevance_7d", "fwd_return_30d"} <= set(meanings)
    assert "tanh" in meanings["trend_7d"] and "7-day" in meanings["trend_7d"]
    assert "-0.4307" in meanings["class_30d"] and "30-day" in meanings["class_30d"]
    assert "below -0.25" in meanings["relevance_class_7d"]
    assert "date" not in meanings and "ret_1d" not in meanings


def test_an_empty_home_opens_the_build_form(data_home) -> None:
    at = _data_page()
    assert next(e for e in at.expander if e.label == "Build a dataset").proto.expanded is True


def test_a_recommender_dataset_is_explored_with_its_sparsity_and_long_tail(engine: Engine) -> None:
    store_small_dataset(engine)
    data = generate_recsys(RecsysSpec(users=60, items=40, interactions=900, seed=1))
    save_recsys_dataset(engine=engine, name="shop", data=data, description="test")
    at = _data_page()
    explore = next(s for s in at.selectbox if s.label == "Explore")
    explore.set_value("shop").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    events = data.interactions
    users, items = events["user_id"].nunique(), events["item_id"].nunique()
    pairs = len(events.drop_duplicates(["user_id", "item_id"]))
    assert metrics["Interactions"] == f"{len(events):,}"
    assert metrics["Users"] == f"{users:,}" and metrics["Items"] == f"{items:,}"
    assert metrics["Density"] == f"{pairs / (users * items):.3%}"
    per_item = events.groupby("item_id").size().sort_values(ascending=False)
    top = per_item.iloc[: round(0.1 * len(per_item))].sum() / per_item.sum()
    assert metrics["Top 10 % of items"] == f"{top:.0%}"
    assert [t.label for t in at.tabs] == ["Users and items", "Over time", "Rows"]
    assert len(at.get("plotly_chart")) == 3  # per user, the long tail, per week
