"""Intervals, paired verdicts and the engine to serve, against direct computations."""

from __future__ import annotations

import numpy as np
import pytest

from core.recsys.evaluation import compare, intervals, serving_choice, verdict_word


@pytest.fixture
def per_user() -> dict[str, dict[str, np.ndarray]]:
    """Per-user NDCG@10 of three engines over 400 users: the model 0.05 above item-kNN, and
    popularity equal to the model on average but noisy."""
    rng = np.random.default_rng(3)
    base = rng.random(400) * 0.4
    return {
        "two_tower": {"ndcg@10": base + 0.05},
        "item_knn": {"ndcg@10": base + rng.normal(0, 0.01, 400)},
        "popularity": {"ndcg@10": base + 0.05 + rng.normal(0, 0.3, 400)},
    }


def test_intervals_hold_the_mean_and_are_as_wide_as_the_standard_error(per_user) -> None:
    found = intervals(per_user, seed=1)
    for engine, metrics in per_user.items():
        values = metrics["ndcg@10"]
        low, high = found[engine]["ndcg@10"]
        standard_error = values.std(ddof=1) / np.sqrt(len(values))
        assert low < values.mean() < high
        assert high - low == pytest.approx(2 * 1.96 * standard_error, rel=0.15)


def test_the_paired_comparison_is_the_mean_difference_over_the_same_users(per_user) -> None:
    """Paired: item-kNN differs by 0.05 +- 0.01 per user, a tight interval although both
    engines' own intervals overlap; popularity's noise leaves no evidence either way."""
    found = compare(per_user, seed=1)
    knn = found["against"]["item_knn"]
    difference = per_user["two_tower"]["ndcg@10"] - per_user["item_knn"]["ndcg@10"]
    assert knn["difference"] == pytest.approx(difference.mean())
    standard_error = difference.std(ddof=1) / np.sqrt(len(difference))
    low, high = knn["interval"]
    assert high - low == pytest.approx(2 * 1.96 * standard_error, rel=0.15)
    assert knn["verdict"] == "beats"
    assert found["against"]["popularity"]["verdict"] == "no evidence"
    assert found["best_baseline"] in ("item_knn", "popularity")
    assert "test users" in found["sentence"]
    assert verdict_word(-0.2, -0.1) == "worse" and verdict_word(-0.1, 0.1) == "no evidence"


def test_a_model_worse_than_a_servable_baseline_does_not_serve() -> None:
    figures = {"two_tower": {"ndcg@10": 0.15}, "ease": {"ndcg@10": 0.22}, "bpr": {"ndcg@10": 0.3}}
    report = {
        "all_users": figures,
        "comparison": {"best_baseline": "bpr", "against": {"ease": {"verdict": "worse"}}},
    }
    chosen = serving_choice(report)
    assert chosen["engine"] == "ease", "BPR ranks best but its factors are not kept for serving"
    assert "0.220 against the two-tower model's 0.150" in chosen["reason"]
    assert "worse" in chosen["reason"]
    figures["two_tower"]["ndcg@10"] = 0.22
    assert serving_choice(report)["engine"] == "two_tower", "a tie goes to the model"


def test_cold_users_get_the_engine_that_ranks_cold_test_users_best() -> None:
    """The online-retail time split: content ranks cold users at 0.005 and popularity at
    0.063, so cold users are served popularity; without a cold segment, content stays."""
    report = {
        "all_users": {"two_tower": {"ndcg@10": 0.066}},
        "cold_users": {
            "two_tower": {"ndcg@10": 0.030},
            "popularity": {"ndcg@10": 0.063},
            "content": {"ndcg@10": 0.005},
            "bpr": {"ndcg@10": 0.2},
        },
        "comparison": {},
        "cold_comparison": {"against": {"popularity": {"verdict": "worse"}}},
    }
    chosen = serving_choice(report, "cold_users")
    assert chosen["engine"] == "popularity" and "cold test users" in chosen["reason"]
    assert "worse" in chosen["reason"]
    report["cold_users"] = {}
    assert serving_choice(report, "cold_users")["engine"] == "content"


def test_the_second_stage_serves_only_where_its_verdict_against_the_best_engine_is_beats() -> None:
    figures = {
        "two_tower": {"ndcg@10": 0.21},
        "ease": {"ndcg@10": 0.22},
        "ranker": {"ndcg@10": 0.23},
    }
    comparison = {"best_baseline": "ease", "against": {"ease": {"verdict": "worse"}}}

    def report(verdict: str) -> dict:
        ranker = {"against": {"ease": {"verdict": verdict, "interval": [0.004, 0.012]}}}
        return {"all_users": figures, "comparison": comparison, "ranker_comparison": ranker}

    chosen = serving_choice(report("beats"))
    assert chosen["engine"] == "ranker"
    assert (
        "0.230 against ease's 0.220" in chosen["reason"]
        and "beats every engine" in chosen["reason"]
    )
    unsure = serving_choice(report("no evidence"))
    assert unsure["engine"] == "ease"
    assert "no evidence it is better, so the simpler engine serves" in unsure["reason"]
    figures["ranker"]["ndcg@10"] = 0.2
    assert serving_choice(report("worse"))["engine"] == "ease"
