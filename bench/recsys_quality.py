"""`python -m bench.recsys_quality`: the recommender on the default synthetic data, 3 seeds.

Trains the two-tower model with the seed's default config and with
``bench/configs/recsys_small.yaml``, each beside popularity, item-kNN, content and BPR on
the same time split, and writes the mean and standard deviation of every test metric to
``bench/recsys_quality.json`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.config import parse_yaml
from core.recsys.config import recsys_configs
from core.recsys.synthetic import generate_recsys
from core.recsys.training import train_recommender

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
CONFIGS = {
    "seed default ([512, 256] -> 128)": {},
    "recsys_small.yaml ([256] -> 64)": {"file": str(HERE / "configs" / "recsys_small.yaml")},
}


def main() -> None:
    data = generate_recsys()
    results: dict = {}
    for label, source in CONFIGS.items():
        runs = []
        for seed in SEEDS:
            base = parse_yaml(Path(source["file"]).read_text()) if source else {}
            result = train_recommender(data, *recsys_configs({**base, "seed": seed}))
            runs.append(result.evaluation)
            print(label, seed, round(result.evaluation["all_users"]["two_tower"]["ndcg@10"], 3))
        results[label] = {
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
    (HERE / "recsys_quality.json").write_text(json.dumps(results, indent=1) + "\n")
    for label, segments in results.items():
        print(f"\n{label}")
        for segment, engines in segments.items():
            for engine, figures in engines.items():
                ndcg, spread = figures["ndcg@10"]
                print(f"  {segment:10} {engine:10} ndcg@10 {ndcg:.3f} ± {spread:.3f}")


if __name__ == "__main__":
    main()
