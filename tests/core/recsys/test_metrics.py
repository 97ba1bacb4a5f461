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
