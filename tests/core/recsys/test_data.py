"""Synthetic interactions, labels, splits and the training set."""

from __future__ import annotations

import pandas as pd
import pytest

from core.recsys.data import (
    INTERACTION_LABELS,
    label_distribution,
    labelled,
    relevant_items,
    split_interactions,
    training_pairs,
)
from core.recsys.synthetic import RecsysSpec, generate_recsys


@pytest.fixture(scope="module")
def data():
    return generate_recsys(RecsysSpec(users=60, items=40, interactions=900, seed=1))


def test_the_generator_is_deterministic_and_sized_as_asked(data) -> None:
    again = generate_recsys(RecsysSpec(users=60, items=40, interactions=900, seed=1))
    pd.testing.assert_frame_equal(data.interactions, again.interactions)
    other = generate_recsys(RecsysSpec(users=60, items=40, interactions=900, seed=2))
    assert not data.interactions.equals(other.interactions)
    assert (len(data.users), len(data.items), len(data.interactions)) == (60, 40, 900)
    assert not data.interactions.duplicated(["user_id", "item_id"]).any()
    assert set(data.interactions["interaction"]) <= set(INTERACTION_LABELS)


def test_default_scale_has_cold_warm_and_hot_users_and_popularity_skew() -> None:
    data = generate_recsys()
    assert (len(data.users), len(data.items), len(data.interactions)) == (350, 250, 7500)
    per_user = data.interactions.groupby("user_id").size()
    assert (per_user < 5).sum() > 10 and (per_user > 20).sum() > 50
    per_item = data.interactions.groupby("item_id").size().sort_values(ascending=False)
    assert per_item.head(25).sum() > 2 * per_item.tail(25).sum(), "popular items draw more"


def test_labels_and_weights_follow_the_seed(data) -> None:
    events = labelled(data.interactions)
    apply = events[events["interaction"] == "apply"].iloc[0]
    assert (apply["label"], apply["weight"]) == (1.0, 3.0)
    with pytest.raises(ValueError, match=r"unknown interaction type.*'share'"):
        labelled(pd.DataFrame({"interaction": ["share"]}))


def test_the_time_split_keeps_every_segment_after_the_previous(data) -> None:
    split = split_interactions(data.interactions)
    assert split.train["timestamp"].max() <= split.val["timestamp"].min()
    assert split.val["timestamp"].max() <= split.test["timestamp"].min()
    assert len(split.train) == pytest.approx(0.7 * 900, abs=1)
    per_user = split_interactions(data.interactions, by="user")
    for user, test in per_user.test.groupby("user_id"):
        train = per_user.train[per_user.train["user_id"] == user]
        assert train.empty or train["timestamp"].max() <= test["timestamp"].min()


def test_negatives_are_items_the_user_never_touched(data) -> None:
    split = split_interactions(data.interactions)
    items = data.items["item_id"].tolist()
    pairs = training_pairs(split.train, items, negatives_per_positive=2, seed=0)
    negatives = pairs[pairs["interaction"] == "negative_sample"]
    touched = set(zip(split.train["user_id"], split.train["item_id"], strict=True))
    assert not any(
        (u, i) in touched for u, i in zip(negatives["user_id"], negatives["item_id"], strict=True)
    )
    positives = (labelled(split.train)["label"] > 0).sum()
    assert len(negatives) <= 2 * positives and len(negatives) > 1.5 * positives
    table = label_distribution(pairs)
    assert table["share"].sum() == pytest.approx(1.0) and table["label"].iloc[0] == 1.0
    fewer = training_pairs(split.train, items, min_interactions=15)
    assert fewer["user_id"].nunique() < pairs["user_id"].nunique()


def test_relevance_means_a_click_or_stronger(data) -> None:
    relevant = relevant_items(data.interactions)
    views = data.interactions[data.interactions["interaction"] == "view"]
    user, item = views.iloc[0]["user_id"], views.iloc[0]["item_id"]
    assert item not in relevant.get(user, set())


def test_the_random_split_cuts_each_user_80_10_10_with_recboles_rounding() -> None:
    sizes = {"a": 1, "b": 2, "c": 3, "d": 10, "e": 15, "f": 40}
    rows = [
        (user, f"i{n}", "like", pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=n))
        for user, size in sizes.items()
        for n in range(size)
    ]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "interaction", "timestamp"])
    split = split_interactions(events, by="random", seed=3)
    counts = {
        name: getattr(split, name).groupby("user_id").size().reindex(list(sizes), fill_value=0)
        for name in ("train", "val", "test")
    }
    # RecBole's _calcu_split_ids: floor of each share, then a segment short of one event gets
    # one while training keeps more than one, test first
    expected = {"a": (1, 0, 0), "b": (1, 0, 1), "c": (1, 1, 1), "d": (8, 1, 1)}
    expected |= {"e": (13, 1, 1), "f": (32, 4, 4)}
    for user, (train, val, test) in expected.items():
        assert (counts["train"][user], counts["val"][user], counts["test"][user]) == (
            train,
            val,
            test,
        ), user
    again = split_interactions(events, by="random", seed=3)
    pd.testing.assert_frame_equal(split.test, again.test)
    other = split_interactions(events, by="random", seed=4)
    assert not split.test.equals(other.test), "the seed draws the cut"
    with pytest.raises(ValueError, match="split by 'time' or 'user' or 'random'"):
        split_interactions(events, by="clock")
