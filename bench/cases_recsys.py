"""Recommender cases: top-10 latency over large catalogues, and training throughput."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from bench.harness import Timed, case

QUERIES = 200


def _latencies(search, queries: np.ndarray) -> dict[str, float]:
    seconds = []
    for query in queries:
        start = time.perf_counter()
        search(query)
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    return {
        "p50_ms": statistics.median(seconds) * 1000,
        "p99_ms": seconds[int(0.99 * len(seconds)) - 1] * 1000,
    }


@case(
    "recsys.top10_latency",
    repeats=1,
    description=f"top-10 by inner product for one user (128-d, {QUERIES} queries, 5 % of items "
    "excluded as seen) over 10k, 100k and 1M items: exact numpy, and FAISS flat when installed",
    target="p50 under 5 ms exact at 100k items on the CPU",
)
def top10_latency(scratch: Path) -> Timed:
    from core.recsys.serving import ItemIndex

    rng = np.random.default_rng(0)

    def measure() -> dict[str, float]:
        figures = {}
        for size in (10_000, 100_000, 1_000_000):
            embeddings = rng.normal(size=(size, 128)).astype(np.float32)
            allowed = rng.random(size) > 0.05
            queries = rng.normal(size=(QUERIES, 128)).astype(np.float32)
            exact = ItemIndex(embeddings)
            label = f"{size // 1000}k"
            for name, value in _latencies(
                lambda q, i=exact, a=allowed: i.search(q, 10, a), queries
            ).items():
                figures[f"exact_{label}_{name}"] = value
            try:
                indexed = ItemIndex(embeddings, use_faiss=True)
            except ImportError:
                continue
            for name, value in _latencies(
                lambda q, i=indexed, a=allowed: i.search(q, 10, a), queries
            ).items():
                figures[f"faiss_{label}_{name}"] = value
        return figures

    return measure


@case(
    "recsys.train_throughput",
    repeats=1,
    description="two-tower training pairs per second on the default synthetic data "
    "(seed defaults and the small-catalogue towers), early stopping off, 10 epochs",
)
def train_throughput(scratch: Path) -> Timed:
    from core.recsys.config import recsys_configs
    from core.recsys.synthetic import generate_recsys
    from core.recsys.training import train_recommender

    data = generate_recsys()

    def measure() -> dict[str, float]:
        figures = {}
        for label, towers in (("seed", {}), ("small", {"hidden_dims": [256], "embedding_dim": 64})):
            config, training = recsys_configs(
                {**towers, "epochs": 10, "early_stopping_patience": 0}
            )
            result = train_recommender(data, config, training, baselines=False)
            pairs = len(result.split.train) * (1 + training.negatives_per_positive)
            seconds = sum(record["seconds"] for record in result.history)
            figures[f"{label}_pairs_per_s"] = pairs * len(result.history) / seconds
        return figures

    return measure
