"""A recommender run's test metrics as the Recommend page shows them: one cell per metric,
the mean with its interval, and the counts of test users in words."""

from __future__ import annotations

import re

from services.recsys.serving import evaluated_users, metrics_cells

REPORT = {
    "primary_metric": "ndcg@10",
    "all_users": {
        "two_tower": {
            "recall@10": 0.4667,
            "ndcg@10": 0.2471,
            "coverage@10": 0.975,
            "users_evaluated": 40.0,
            "users_skipped": 5.0,
        },
        "content": {
            "recall@10": 0.7771,
            "ndcg@10": 0.5949,
            "coverage@10": 1.0,
            "users_evaluated": 38.0,
            "users_skipped": 5.0,
        },
    },
    "intervals": {
        "all_users": {
            "two_tower": {"recall@10": [0.3458, 0.5958], "ndcg@10": [0.1761, 0.3255]},
            "content": {"recall@10": [0.658, 0.877], "ndcg@10": [0.493, 0.683]},
        }
    },
}


def test_each_metric_is_one_cell_with_its_interval_primary_first() -> None:
    cells = metrics_cells(REPORT)
    assert list(cells.columns) == ["ndcg@10", "recall@10", "coverage@10"]
    assert list(cells.index) == ["content", "two_tower"] and cells.index.name == "engine"
    assert cells.at["two_tower", "ndcg@10"] == "0.247 (0.176..0.326)"
    assert cells.at["content", "recall@10"] == "0.777 (0.658..0.877)"
    assert cells.at["content", "coverage@10"] == "1.000", "no interval: the mean alone"
    assert not any(re.search(r"(low|high)$", c) for c in cells.columns)


def test_counts_of_test_users_are_said_once_in_words() -> None:
    assert evaluated_users(REPORT) == "38..40 test users evaluated, 5 skipped"
