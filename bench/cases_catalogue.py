"""Recommender cases at catalogue scale, on generated logs (marked as such in their figures):
a play-count-shaped log end to end, and EASE's sparse form at 50,000 items."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from bench.harness import Timed, case


def implicit_log(
    users: int, items: int, pairs: int, seed: int = 0, spread: float = 1.5
) -> pd.DataFrame:
    """(user_id, item_id, weight) pairs with long-tailed item popularity and user activity
    and 8 hidden tastes, without timestamps: the shape of a play-count log."""
    rng = np.random.default_rng(seed)
    taste_u = rng.normal(size=(users, 8))
    taste_i = rng.normal(size=(items, 8))
    popularity = rng.normal(0, spread, items)
    activity = rng.lognormal(0, 1.0, users)
    counts = np.maximum(1, np.round(activity / activity.sum() * pairs)).astype(int)
    counts = np.minimum(counts, items // 4)
    rows, columns = [], []
    for start in range(0, users, 256):
        block = slice(start, min(start + 256, users))
        logits = taste_u[block] @ taste_i.T + popularity  # (block, items)
        gumbel = logits - np.log(-np.log(rng.random(logits.shape)))
        for offset, row in enumerate(gumbel):
            user = start + offset
            chosen = np.argpartition(-row, counts[user])[: counts[user]].copy()  # not a view
            rows.append(np.full(len(chosen), user))
            columns.append(chosen)
    user_of, item_of = np.concatenate(rows), np.concatenate(columns)
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in user_of],
            "item_id": [f"a{i}" for i in item_of],
            "weight": rng.geometric(0.05, len(user_of)),
        }
    )


@case(
    "recsys.play_count_end_to_end",
    repeats=1,
    description="a generated play-count-shaped log (1,892 users x 17,632 artists x about "
    "92,800 pairs, a weight column, no timestamp; the shape of the music log of issue 38): "
    "import with --map-like renames, default training on the random split, every engine "
    "tuned and evaluated, the second stage included",
    target="under 60 s and 1.5 GB peak RSS on 2 cores",
)
def play_count_end_to_end(scratch: Path) -> Timed:
    from core.recsys.config import recsys_configs
    from core.recsys.importers import import_recsys
    from core.recsys.training import train_recommender

    log = implicit_log(1_892, 17_632, 92_834)
    path = scratch / "user_artists.dat"
    log.rename(columns={"user_id": "userID", "item_id": "artistID", "weight": "plays"}).to_csv(
        path, sep="\t", index=False
    )

    def measure() -> dict[str, float]:
        started = time.perf_counter()
        data = import_recsys(
            path, mapping={"user_id": "userID", "item_id": "artistID", "weight": "plays"}
        )
        imported = time.perf_counter() - started
        result = train_recommender(data, *recsys_configs({"split": "random"}))
        figures = {
            "pairs": float(len(data.interactions)),
            "import_s": imported,
            "total_s": time.perf_counter() - started,
            **{f"{e}_ndcg@10": m["ndcg@10"] for e, m in result.evaluation["all_users"].items()},
        }
        figures["ease_sparse"] = float("neighbours" in result.evaluation["settings"]["ease"])
        return figures

    return measure


@case(
    "recsys.sparse_ease_50k",
    repeats=1,
    description="EASE above its dense limit: SparseEASE (each item's weights on its 200 most "
    "co-purchased items) on a generated log of 20,000 users x 50,000 items x about 400,000 "
    "pairs (flatter popularity, so most items are chosen), the 5 lambdas of the tuning grid "
    "from one pruned Gram matrix; dense EASE would hold 4 arrays of up to 10 GB",
    target="within a 4 GB budget",
)
def sparse_ease_50k(scratch: Path) -> Timed:
    from core.recsys.baselines import SparseEASE
    from core.recsys.tuning import EASE_LAMBDAS

    log = implicit_log(20_000, 50_000, 400_000, seed=1, spread=0.5)
    users = pd.Index(sorted(set(log["user_id"])))
    items = pd.Index(sorted(set(log["item_id"])))
    matrix = sparse.csr_matrix(
        (
            np.ones(len(log), dtype=np.float32),
            (users.get_indexer(log["user_id"]), items.get_indexer(log["item_id"])),
        ),
        shape=(len(users), len(items)),
    )

    def measure() -> dict[str, float]:
        started = time.perf_counter()
        ease = list(SparseEASE.path(matrix, EASE_LAMBDAS))[2]
        fitted = time.perf_counter() - started
        scored = ease.scores(np.arange(1024))
        return {
            "items": float(matrix.shape[1]),
            "pairs": float(matrix.nnz),
            "fit_5_lambdas_s": fitted,
            "weights_mb": ease.weights.data.nbytes / 2**20,
            "scored_users": float(len(scored)),
        }

    return measure
