"""Engines compared for one user: raw scores are the engine's own, normalised ones are
percentiles over the catalogue, and every shown number has digits to show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import percentileofscore

from core.recsys.catalogue import Catalogue
from core.recsys.config import recsys_configs
from core.recsys.engine_comparison import engine_top, percentiles, score_format, shared_items
from core.recsys.engines import AUTO, ENGINES
from core.recsys.serving import Recommendation, Recommender, best
from core.recsys.synthetic import RecsysSpec, generate_recsys
from core.recsys.training import train_recommender


@pytest.fixture(scope="module")
def recommender(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=600, seed=4))
    config, training = recsys_configs({"hidden_dims": [16], "embedding_dim": 8, "epochs": 2})
    result = train_recommender(data, config, training, run_dir=tmp_path_factory.mktemp("cmp"))
    return Recommender(result.model, result.catalogue, data.interactions, config)


def test_percentiles_match_scipys_weak_percentile() -> None:
    scores = np.array([0.3, -1.0, 0.3, 2.5, 0.0, 0.3, 7.0])
    chosen = np.array([7.0, 0.3, -1.0, 0.1])
    expected = [percentileofscore(scores, c, kind="weak") for c in chosen]
    np.testing.assert_allclose(percentiles(scores, chosen), expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([0.74, 0.45, 0.43]), "%.3f"),
        (np.array([0.0123, 0.0005, 0.0]), "%.6f"),
        (np.array([1e-12, 0.5]), "%.8f"),
        (np.array([28.0, 23.0, 22.0]), "%.0f"),
        (np.array([0.0, 0.0]), "%.0f"),
    ],
)
def test_score_formats_keep_three_significant_digits(values, expected) -> None:
    assert score_format(values) == expected
    smallest = np.abs(values[values != 0]).min() if np.any(values != 0) else 0.0
    if 1e-8 <= smallest < 1:
        assert float(score_format(values) % smallest) != 0.0, "a non-zero score shown as 0"


SERVED = [name for name, entry in ENGINES.items() if entry.served and not entry.needs_ranker]
"""What a run without a stored second stage serves (BPR is judged, never served)."""


def test_only_servable_engines_are_offered(recommender: Recommender) -> None:
    assert "bpr" in ENGINES and "bpr" not in SERVED
    assert recommender.engines() == [AUTO, *SERVED]
    assert recommender.engines(auto=False) == SERVED
    with pytest.raises(ValueError, match="judged only"):
        recommender.recommend(recommender.catalogue.user_ids[0], engine="bpr")
    catalogue: Catalogue = recommender.catalogue
    untrained = Recommender(None, catalogue, recommender.interactions, recommender.config)
    assert untrained.engines() == ["auto", "content", "popularity"]


@pytest.mark.parametrize("engine", SERVED)
def test_catalogue_scores_are_the_scores_each_engine_ranks_by(
    recommender: Recommender, engine: str
) -> None:
    user = "u0003"
    answer = recommender.recommend(user, limit=10, engine=engine)
    scores = recommender.catalogue_scores(user, answer.engine)
    row = recommender.catalogue.user_index.get_loc(user)
    unseen = recommender.seen[[row]].toarray()[0] == 0
    indices, values = best(scores, 10, unseen)
    assert answer.items["item_id"].tolist() == recommender.items["item_id"].iloc[indices].tolist()
    np.testing.assert_allclose(answer.items["score"], np.round(values, 4), atol=1e-4)


@pytest.mark.parametrize("engine", SERVED)
def test_an_engines_top_has_raw_and_normalised_scores(
    recommender: Recommender, engine: str
) -> None:
    top = engine_top(recommender, "u0005", engine, limit=10)
    table = top.items
    assert list(table.columns) == ["rank", "name", "item_id", "score", "normalised"]
    assert table["normalised"].between(0, 100).all() and len(table) == 10
    assert table["score"].is_monotonic_decreasing and table["normalised"].is_monotonic_decreasing
    scores = recommender.catalogue_scores("u0005", top.engine)
    positions = recommender.catalogue.item_index.get_indexer(table["item_id"])
    np.testing.assert_array_equal(table["score"], scores[positions].astype(float))
    expected = [percentileofscore(scores, s, kind="weak") for s in table["score"]]
    np.testing.assert_allclose(table["normalised"], expected)


def test_shared_items_count_the_first_lists_items_in_each_other() -> None:
    def listed(*items: str) -> Recommendation:
        return Recommendation("u", "x", "", pd.DataFrame({"item_id": list(items)}))

    tops = {"a": listed("1", "2", "3"), "b": listed("3", "4"), "c": listed("5")}
    assert shared_items(tops) == {"b": 1, "c": 0}
    assert shared_items({}) == {}


def test_a_known_user_whose_profile_and_history_match_nothing_gets_the_fallback(
    recommender: Recommender,
) -> None:
    user = recommender.catalogue.user_ids[0]
    others = recommender.interactions[recommender.interactions["user_id"] != user]
    blank = Recommender(recommender.model, recommender.catalogue, others, recommender.config)
    row = blank.catalogue.user_index.get_loc(user)
    words = [c for c in blank.users.columns if blank.users[c].dtype != float and c != "user_id"]
    blank.users.loc[row, words] = ""
    answer = blank.recommend(user, engine="content", limit=3)
    assert answer.engine == "popularity" and "nothing in the profile matched" in answer.reason
