"""`python -m bench.recsys_quality [--only NAME ...]`: the recommender beside its baselines,
mean and spread over 3 seeds, written to ``bench/recsys_quality.json``.

- ``synthetic``: the default developers x startups data, time split; the seed's default
  config and ``bench/configs/recsys_small.yaml`` (about 2 minutes on 2 cores);
- ``ml100k-shape`` and ``ml1m-shape``: the MovieLens-shaped atomic files of
  ``bench.recsys_data`` imported with ``--positive-threshold 4``, the default config on the
  per-user random 80/10/10 split (RecBole's protocol: full ranking, training and validation
  items masked); each seed draws its own split, the same for every engine (about 5 and 35
  minutes on 2 cores).

- ``retail-random`` and ``retail-time``: the real online-retail purchase log of
  ``../shared/data/online-retail`` (README there) imported as it comes (interactions, users,
  items; every row a purchase), the default config on the per-user random 80/10/10 split and
  on the global time split 70/15/15 (about 5 minutes a seed on 2 cores); per seed the
  two-tower model's verdict against each baseline and the engine that would serve.

Every engine (two-tower, popularity, item-kNN, EASE, content, BPR) is scored on the same
test users with the same masks.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from core.config import parse_yaml
from core.recsys.config import recsys_configs
from core.recsys.synthetic import generate_recsys
from core.recsys.training import train_recommender

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "recsys_quality.json"
SEEDS = (0, 1, 2)
CONFIGS = {
    "seed default ([512, 256] -> 128)": {},
    "recsys_small.yaml ([256] -> 64)": {"file": str(HERE / "configs" / "recsys_small.yaml")},
}
SHAPES = ("ml100k-shape", "ml1m-shape")
RETAIL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online-retail"
REAL = ("retail-random", "retail-time")


def summarise(runs: list[dict]) -> dict:
    """Mean and standard deviation of every metric over the runs, per segment and engine."""
    return {
        segment: {
            engine: {
                metric: [float(np.mean(v)), float(np.std(v))]
                for metric in runs[0][segment][engine]
                for v in [[run[segment][engine][metric] for run in runs]]
            }
            for engine in runs[0][segment]
        }
        for segment in ("all_users", "cold_users")
    }


def synthetic() -> dict:
    data = generate_recsys()
    results = {}
    for label, source in CONFIGS.items():
        runs = []
        for seed in SEEDS:
            base = parse_yaml(Path(source["file"]).read_text()) if source else {}
            result = train_recommender(data, *recsys_configs({**base, "seed": seed}))
            runs.append(result.evaluation)
            print(label, seed, round(result.evaluation["all_users"]["two_tower"]["ndcg@10"], 3))
        results[label] = summarise(runs)
    return results


def shaped(shape: str) -> dict:
    from bench.recsys_data import write
    from core.recsys.importers import import_recsys

    with tempfile.TemporaryDirectory() as folder:
        data = import_recsys(write(shape, Path(folder)), positive_threshold=4)
    runs, seconds, epochs = [], [], []
    for seed in SEEDS:
        started = time.perf_counter()
        result = train_recommender(data, *recsys_configs({"split": "random", "seed": seed}))
        seconds.append(time.perf_counter() - started)
        epochs.append(len(result.history))
        runs.append(result.evaluation)
        figures = {e: round(m["ndcg@10"], 4) for e, m in result.evaluation["all_users"].items()}
        print(shape, seed, figures, f"{seconds[-1]:.0f} s", flush=True)
    label = "default config, random 80/10/10 split, ratings >= 4 positive"
    return {
        label: {
            **summarise(runs),
            "seconds": seconds,
            "epochs": epochs,
            "test_interactions": [run["test_interactions"] for run in runs],
        }
    }


def retail(split: str) -> dict:
    from core.recsys.importers import import_recsys

    data = import_recsys(
        RETAIL / "interactions.csv", users=RETAIL / "users.csv", items=RETAIL / "items.csv"
    )
    runs, seconds, epochs, verdicts, served = [], [], [], [], []
    for seed in SEEDS:
        started = time.perf_counter()
        result = train_recommender(data, *recsys_configs({"split": split, "seed": seed}))
        seconds.append(time.perf_counter() - started)
        epochs.append(len(result.history))
        runs.append(result.evaluation)
        comparison = result.evaluation["comparison"]
        verdicts.append({e: found["verdict"] for e, found in comparison["against"].items()})
        served.append(result.evaluation["serve"]["engine"])
        figures = {e: round(m["ndcg@10"], 4) for e, m in result.evaluation["all_users"].items()}
        print(split, seed, figures, verdicts[-1], f"{seconds[-1]:.0f} s", flush=True)
    return {
        f"default config, {split} split, every purchase a positive": {
            **summarise(runs),
            "seconds": seconds,
            "epochs": epochs,
            "verdicts": verdicts,
            "served": served,
            "intervals": [run["intervals"]["all_users"] for run in runs],
            "test_interactions": [run["test_interactions"] for run in runs],
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=["synthetic", *SHAPES, *REAL])
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if "synthetic" not in results:  # the file of earlier versions held the synthetic run only
        results = {"synthetic": results} if results else {}
    for name in args.only or ["synthetic", *SHAPES, *REAL]:
        if name in REAL:
            results[name] = retail(name.split("-")[1])
        else:
            results[name] = synthetic() if name == "synthetic" else shaped(name)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    for name, configs in results.items():
        for label, segments in configs.items():
            print(f"\n{name}: {label}")
            for engine, figures in segments["all_users"].items():
                ndcg, spread = figures["ndcg@10"]
                print(f"  all users  {engine:10} ndcg@10 {ndcg:.3f} ± {spread:.3f}")


if __name__ == "__main__":
    main()
