"""The learned second stage: it combines what each engine knows, reads only what it is given,
and survives a JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from core.recsys.ranker import CANDIDATES, OUTSIDE, Context, SecondStage, candidates

USERS, ITEMS = 600, 120


def _world(seed: int):
    """Each user has 3 relevant items; engine ``a`` sees them for even users, ``b`` for odd
    ones, each scoring noise elsewhere; every user has seen 10 other items."""
    rng = np.random.default_rng(seed)
    relevant = [set(rng.choice(ITEMS, 3, replace=False).tolist()) for _ in range(USERS)]
    seen = np.zeros((USERS, ITEMS), dtype=np.float32)
    for user, items in enumerate(relevant):
        others = np.setdiff1d(np.arange(ITEMS), list(items))
        seen[user, rng.choice(others, 10, replace=False)] = 1.0
    noise = {name: rng.normal(size=(USERS, ITEMS)) for name in ("a", "b")}
    for user, items in enumerate(relevant):
        name = "a" if user % 2 == 0 else "b"
        noise[name][user, list(items)] += 3.0
    scorers = {
        "two_tower": lambda rows: noise["a"][rows],
        "ease": lambda rows: noise["b"][rows],
    }
    return relevant, sparse.csr_matrix(seen), scorers


def _context() -> Context:
    zeros = np.zeros(ITEMS, dtype=np.float32)
    return Context(zeros, zeros, zeros, np.zeros(USERS, np.float32), np.zeros(USERS, np.float32))


def _hits(scores: np.ndarray, relevant: list[set[int]], k: int = 3) -> float:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(
        np.mean([len(set(row) & items) / k for row, items in zip(top, relevant, strict=True)])
    )


def test_the_second_stage_ranks_better_than_either_engine_on_fresh_users() -> None:
    relevant, seen, scorers = _world(0)
    stage = SecondStage.fit(scorers, np.arange(USERS), relevant, seen, _context(), seed=0)
    assert stage.engines == ("two_tower", "ease")
    fresh, fresh_seen, fresh_scorers = _world(1)
    rows = np.arange(USERS)
    ranked = stage.scorer(fresh_scorers, fresh_seen, _context())(rows)
    masked = fresh_seen.toarray() > 0
    alone = [np.where(masked, -np.inf, s(rows)) for s in fresh_scorers.values()]
    oracle = np.maximum(*alone)  # either engine's standout: what a good blend finds
    best_alone = max(_hits(a, fresh) for a in alone)
    assert best_alone < 0.6  # each engine knows half the users
    assert _hits(ranked, fresh) > best_alone + 0.1
    assert _hits(ranked, fresh) > 0.9 * _hits(oracle, fresh)
    assert not np.any(ranked[fresh_seen.toarray() > 0] > OUTSIDE), "seen items never rank"
    assert set(stage.importance()) >= {"two_tower_score", "ease_place", "item_recent"}


def test_candidates_are_each_engines_best_unseen_items_merged_per_user() -> None:
    _, seen, scorers = _world(2)
    rows = np.array([0, 5, 7])
    mask = seen[rows].toarray() > 0
    found = candidates(scorers, rows, mask, _context())
    for position, user in enumerate(rows):
        mine = set(found.items[found.rows == position].tolist())
        expected = set()
        for scorer in scorers.values():
            scores = np.where(mask[position], -np.inf, scorer(np.array([user]))[0])
            expected |= set(np.argsort(-scores, kind="stable")[:CANDIDATES].tolist())
        assert mine == expected
        assert not mine & set(np.flatnonzero(mask[position]).tolist())
    assert np.all(np.diff(found.rows) >= 0), "grouped by user, in block order"


def test_the_stored_second_stage_scores_as_the_fitted_one(tmp_path) -> None:
    relevant, seen, scorers = _world(3)
    stage = SecondStage.fit(scorers, np.arange(USERS), relevant, seen, _context(), seed=0)
    again = SecondStage.from_json(stage.to_json())
    rows = np.arange(40)
    np.testing.assert_allclose(
        again.scorer(scorers, seen, _context())(rows), stage.scorer(scorers, seen, _context())(rows)
    )
    with pytest.raises(ValueError, match="needs the engines ease"):
        stage.scorer({"two_tower": scorers["two_tower"]}, seen, _context())


def test_the_context_counts_only_the_history_it_is_given() -> None:
    import pandas as pd

    from core.recsys.catalogue import Catalogue
    from core.recsys.features import RecsysEncoder
    from core.recsys.synthetic import RecsysSpec, generate_recsys

    data = generate_recsys(RecsysSpec(users=30, items=20, interactions=200, seed=1))
    catalogue = Catalogue.build(data, RecsysEncoder.fit(data.users, data.items, seed=0))
    events = data.interactions.sort_values("timestamp")
    early = events.iloc[:100]
    context = Context.of(catalogue, early)
    counts = early["item_id"].value_counts()
    for item, row in zip(catalogue.item_ids, range(len(catalogue.item_ids)), strict=True):
        assert context.item_events[row] == pytest.approx(np.log1p(counts.get(item, 0)))
    last = pd.to_datetime(early["timestamp"]).max()
    recent = early[pd.to_datetime(early["timestamp"]) >= last - pd.Timedelta(days=30)]
    assert np.expm1(context.item_recent).sum() == pytest.approx(len(recent))
