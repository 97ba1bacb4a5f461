"""Ranking metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.recsys.metrics import catalogue_coverage, ranking_metrics, top_k


def test_one_user_by_hand() -> None:
    # ranked 3, 1, 2; relevant {1, 5}: one hit at rank 2
    figures = ranking_metrics([[3, 1, 2]], [{1, 5}], k=3)
    assert figures["precision@3"] == pytest.approx(1 / 3)
    assert figures["recall@3"] == pytest.approx(1 / 2)
    assert figures["f1@3"] == pytest.approx(0.4)
    assert figures["hit_rate@3"] == 1.0
    ideal = 1 + 1 / math.log2(3)
    assert figures["ndcg@3"] == pytest.approx((1 / math.log2(3)) / ideal)
    assert figures["map@3"] == pytest.approx((1 / 2) / 2)  # precision at rank 2, / min(2, 3)


def test_fewer_relevant_items_than_k_can_still_score_one() -> None:
    figures = ranking_metrics([[7, 0, 1]], [{7}], k=3)
    assert figures["ndcg@3"] == 1.0 and figures["map@3"] == 1.0 and figures["recall@3"] == 1.0
    assert figures["precision@3"] == pytest.approx(1 / 3), "precision still divides by k"


def test_users_without_relevant_items_are_skipped_and_counted() -> None:
    figures = ranking_metrics([[0, 1], [2, 3], [4, 5]], [{1}, set(), {9}], k=2)
    assert (figures["users_evaluated"], figures["users_skipped"]) == (2.0, 1.0)
    assert figures["hit_rate@2"] == 0.5
    assert figures["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 2)


def test_ties_rank_the_lower_index_first_and_excluded_items_never_appear() -> None:
    scores = np.array([[1.0, 2.0, 2.0, 0.0]])
    assert top_k(scores, 3).tolist() == [[1, 2, 0]]
    exclude = np.array([[False, True, False, False]])
    assert top_k(scores, 3, exclude).tolist() == [[2, 0, 3]]
    everything_but_one = np.array([[True, True, False, True]])
    assert top_k(scores, 3, everything_but_one).tolist() == [[2, -1, -1]], "padded with -1"
    assert ranking_metrics([[2, -1, -1]], [{2}], k=3)["ndcg@3"] == 1.0


def test_coverage_counts_distinct_items_shown() -> None:
    assert catalogue_coverage(np.array([[0, 1], [1, 2], [2, -1]]), 10) == 0.3


def test_popularity_metrics_match_an_independent_implementation() -> None:
    """NDCG@10, Recall@10 and HR@10 of popularity through the evaluation (sparse masks, user
    blocks, partial top-k) against a few plain lines on a fixed data set, to 1e-9."""
    import pandas as pd

    from core.recsys.baselines import Popularity
    from core.recsys.catalogue import Catalogue
    from core.recsys.features import RecsysEncoder
    from core.recsys.segments import Segment
    from core.recsys.synthetic import RecsysData

    rng = np.random.default_rng(7)
    items = [f"i{n:02d}" for n in range(30)]
    users = [f"u{n}" for n in range(12)]
    weights = np.linspace(3, 0.2, len(items))  # a popularity skew, with ties among counts
    rows = []
    for user in users:
        chosen = rng.choice(len(items), size=12, replace=False, p=weights / weights.sum())
        for rank, item in enumerate(chosen):
            segment = "train" if rank < 8 else ("val" if rank < 9 else "test")
            kind = "like" if rng.random() < 0.8 else "view"  # views are seen, never relevant
            rows.append((user, items[item], kind, segment))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "interaction", "segment"])
    frame["timestamp"] = pd.Timestamp("2024-01-01")
    train, val, test = (frame[frame["segment"] == s] for s in ("train", "val", "test"))
    data = RecsysData(pd.DataFrame({"user_id": users}), pd.DataFrame({"item_id": items}), frame, {})
    catalogue = Catalogue.build(data, RecsysEncoder.fit(data.users, data.items))
    before = pd.concat([train, val])
    history = catalogue.history(before)
    figures = Segment(catalogue, test, before).metrics(Popularity(history.matrix).scores)

    # the few lines: count liked-or-viewed events per item, rank unseen items by count
    # (ties: the lower item index first), compare the top 10 with the liked test items
    counts = {item: 0 for item in items}
    for item in before["item_id"]:
        counts[item] += 1
    ndcg, recall, hit, evaluated = [], [], [], 0
    for user in users:
        relevant = set(test[(test["user_id"] == user) & (test["interaction"] == "like")]["item_id"])
        if not relevant:
            continue
        evaluated += 1
        seen = set(before[before["user_id"] == user]["item_id"])
        ranked = sorted((i for i in items if i not in seen), key=lambda i: (-counts[i], i))[:10]
        gains = [1.0 if item in relevant else 0.0 for item in ranked]
        dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
        ideal = sum(1 / math.log2(r + 2) for r in range(min(len(relevant), 10)))
        ndcg.append(dcg / ideal)
        recall.append(sum(gains) / len(relevant))
        hit.append(float(sum(gains) > 0))
    assert figures["users_evaluated"] == evaluated > 5 and 0 < np.mean(ndcg) < 1
    assert abs(figures["ndcg@10"] - np.mean(ndcg)) < 1e-9
    assert abs(figures["recall@10"] - np.mean(recall)) < 1e-9
    assert abs(figures["hit_rate@10"] - np.mean(hit)) < 1e-9
