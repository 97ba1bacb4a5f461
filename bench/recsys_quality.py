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
  on the global time split 70/15/15 (about 3 minutes a seed on 2 cores); per seed the
  two-tower model's and the second stage's verdicts against each engine, the engine that
  would serve, and each step's seconds and peak RSS (import, split and encoding, the
  two-tower model, item-kNN and EASE, BPR, the second stage, test ranking); once per split
  the rewritten steps timed beside what they replaced (``todays_path``).

Every engine (two-tower, popularity, item-kNN, EASE, content, BPR, and the second stage over
the first four) is scored on the same test users with the same masks.
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


class Steps:
    """Seconds and peak RSS of each step of a run, split at the lines its ``report`` callback
    hears (Linux: the peak is reset through ``/proc/self/clear_refs`` at each line)."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.label, self.started = "import", time.perf_counter()
        self._reset()

    @staticmethod
    def _reset() -> None:
        Path("/proc/self/clear_refs").write_text("5")

    @staticmethod
    def _peak_mb() -> float:
        line = next(
            x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM")
        )
        return int(line.split()[1]) / 1024

    def __call__(self, line: str) -> None:
        self.close()
        self.label = next((label for start, label in STEPS if line.startswith(start)), self.label)

    def close(self) -> None:
        now = time.perf_counter()
        if self.records and self.records[-1]["step"] == self.label:
            record = self.records[-1]
            record["seconds"] += now - self.started
            record["peak_mb"] = max(record["peak_mb"], self._peak_mb())
        else:
            self.records.append(
                {"step": self.label, "seconds": now - self.started, "peak_mb": self._peak_mb()}
            )
        self.started = now
        self._reset()


STEPS = (
    ("split", "split and encode"),
    ("encoded", "split and encode"),
    ("solving", "two-tower model"),
    ("least-squares", "two-tower model"),
    ("training BPR", "BPR"),
    ("training", "two-tower model"),
    ("stopped", "two-tower model"),
    ("tuning", "item-kNN and EASE"),
    ("learning the second stage", "second stage"),
    ("evaluating", "test ranking"),
)
"""The first words of each ``report`` line and the step they start (the first match)."""


def todays_path(data, split: str, seed: int) -> dict:
    """The two steps this round rewrote, timed beside what they were: EASE's lambda grid from
    one eigendecomposition against one inverse per lambda, item-kNN's grid from one
    similarity computation per shrinkage against one per cell."""
    from core.recsys.baselines import EASE, ItemKNN
    from core.recsys.catalogue import Catalogue
    from core.recsys.data import distinct_pairs, split_interactions
    from core.recsys.features import RecsysEncoder
    from core.recsys.tuning import EASE_LAMBDAS, KNN_NEIGHBOURS, KNN_SHRINKAGE

    parts = split_interactions(distinct_pairs(data.interactions), by=split, seed=seed)
    catalogue = Catalogue.build(data, RecsysEncoder.fit(data.users, data.items, seed=seed))
    train = catalogue.history(parts.train).matrix
    timed = {}
    for label, fit in (
        ("ease, one inverse per lambda", lambda: [EASE(train, v) for v in EASE_LAMBDAS]),
        ("ease, one eigendecomposition", lambda: list(EASE.path(train, EASE_LAMBDAS))),
        (
            "item-kNN, one computation per cell",
            lambda: [ItemKNN(train, n, s) for s in KNN_SHRINKAGE for n in KNN_NEIGHBOURS],
        ),
        (
            "item-kNN, one per shrinkage",
            lambda: [
                widest.fewer(n)
                for s in KNN_SHRINKAGE
                for widest in [ItemKNN(train, max(KNN_NEIGHBOURS), s)]
                for n in KNN_NEIGHBOURS
            ],
        ),
    ):
        started = time.perf_counter()
        fit()
        timed[label] = time.perf_counter() - started
        print(f"  {label}: {timed[label]:.1f} s", flush=True)
    return timed


def retail(split: str) -> dict:
    from core.recsys.importers import import_recsys

    runs, seconds, epochs, verdicts, served, ranker, steps = [], [], [], [], [], [], []
    for seed in SEEDS:
        meter = Steps()
        started = time.perf_counter()
        data = import_recsys(
            RETAIL / "interactions.csv", users=RETAIL / "users.csv", items=RETAIL / "items.csv"
        )
        meter("split")
        result = train_recommender(
            data, *recsys_configs({"split": split, "seed": seed}), report=meter
        )
        meter.close()
        seconds.append(time.perf_counter() - started)
        steps.append(meter.records)
        epochs.append(len(result.history))
        runs.append(result.evaluation)
        comparison = result.evaluation["comparison"]
        verdicts.append({e: found["verdict"] for e, found in comparison["against"].items()})
        second = result.evaluation.get("ranker_comparison", {}).get("against", {})
        ranker.append({e: found["verdict"] for e, found in second.items()})
        served.append(result.evaluation["serve"]["engine"])
        figures = {e: round(m["ndcg@10"], 4) for e, m in result.evaluation["all_users"].items()}
        print(split, seed, figures, ranker[-1], served[-1], f"{seconds[-1]:.0f} s", flush=True)
        for record in meter.records:
            print(f"  {record['step']:18} {record['seconds']:6.1f} s {record['peak_mb']:7.0f} MB")
    return {
        f"default config, {split} split, every purchase a positive": {
            **summarise(runs),
            "seconds": seconds,
            "steps": steps,
            "todays_path": todays_path(data, split, SEEDS[0]),
            "epochs": epochs,
            "verdicts": verdicts,
            "ranker_verdicts": ranker,
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
