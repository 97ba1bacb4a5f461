"""Model quality on the documented synthetic recipe: the dual tower vs baselines and oracle.

    python -m bench.quality            # writes bench/quality.json, prints a Markdown table

Recipe: 100 synthetic tickers, 2015-01-01..2024-12-31, generator seed 42, with signal; the
default DataConfig split (70/15/15, 30-day purge). The dual tower trains with
bench/configs/dual_tower_synthetic.yaml under three seeds, and three more times on shuffled
training labels (the leak detector, which must land at chance). Baselines are fit on the same
training rows and scored on the same test rows, against the latent (oracle) relevance.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from core.config import DataConfig, TrainingConfig
from core.evaluation import baseline_predictions, model_predictions, score_report, seed_level
from core.models import model_spec
from core.sources import build_market_dataset, synthetic_data
from core.training import train_model

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "configs" / "dual_tower_synthetic.yaml"
OUTPUT = HERE / "quality.json"


def summary(report: dict) -> dict:
    return {
        h: {
            "pearson": section["vs_oracle"]["pearson"],
            "raw_pearson": section["vs_oracle"]["raw_pearson"],
            "prediction_std": section["vs_oracle"]["prediction_std"],
            "skill": section["vs_oracle"]["skill"],
            "mse": section["vs_oracle"]["mse"],
            "direction_accuracy": section["vs_oracle"]["direction_accuracy"],
            "class_accuracy": section["vs_oracle"]["class_accuracy"],
            "label_pearson": section["regression"]["pearson"],
            "rank_ic": section["finance"]["rank_ic"],
            "level": seed_level(section),
        }
        for h, section in report.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--control-only", action="store_true", help="rerun only the shuffled-label control"
    )
    args = parser.parse_args()
    started = time.time()
    tickers = [f"T{i:03d}" for i in range(args.tickers)]
    data = synthetic_data(
        tickers, "2015-01-01", "2024-12-31", seed=42, signal=True, horizons=[7, 30]
    )
    dataset = build_market_dataset(data, DataConfig())
    spec = model_spec("dual_tower")
    base = TrainingConfig.load_yaml(CONFIG, partial=True).to_dict()
    runs, loaders = {}, None
    if args.control_only:
        previous = json.loads(OUTPUT.read_text())
        runs = previous["dual_tower"]["runs"]
    controls = [f"shuffled-{seed}" for seed in args.seeds]
    for seed in controls if args.control_only else [*args.seeds, *controls]:
        shuffled = isinstance(seed, str)
        training = TrainingConfig.from_dict(
            {**base, "seed": int(seed.split("-")[1]) if shuffled else seed}
        )
        result = train_model(
            dataset, model_name="dual_tower", training=training, shuffle_labels=shuffled
        )
        predictions = model_predictions(spec, result.trainer.model, result.loaders.test)
        runs[str(seed)] = {
            **summary(score_report(spec, predictions, dataset)),
            "epochs": len(result.history),
            "best_epoch": result.trainer.best_epoch,
        }
        loaders = loaders or result.loaders
        print(f"dual_tower seed {seed}: {runs[str(seed)]['7d']}", flush=True)
    if args.control_only:
        previous["dual_tower"]["runs"] = runs
        OUTPUT.write_text(json.dumps(previous, indent=2) + "\n")
        print(render(previous))
        return
    baselines = {
        name: summary(score_report(spec, frame, dataset))
        for name, frame in baseline_predictions(spec, dataset, loaders).items()
    }
    seeded = [runs[str(s)] for s in args.seeds]
    aggregate = {
        h: {
            metric: {
                "mean": float(np.mean([r[h][metric] for r in seeded])),
                "std": float(np.std([r[h][metric] for r in seeded])),
            }
            for metric in ("pearson", "mse", "direction_accuracy", "class_accuracy")
        }
        for h in ("7d", "30d")
    }
    result = {
        "recipe": {
            "tickers": args.tickers,
            "start": "2015-01-01",
            "end": "2024-12-31",
            "generator_seed": 42,
            "signal": True,
            "config": str(CONFIG.name),
            "train_rows": loaders.train.num_rows,
            "test_rows": loaders.test.num_rows,
        },
        "dual_tower": {"runs": runs, "mean_std": aggregate},
        "baselines": baselines,
        "seconds": time.time() - started,
    }
    OUTPUT.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))


def render(result: dict) -> str:
    lines = [
        "| predictor | 7d corr | 7d MSE | 7d dir. acc | 30d corr | 30d MSE | 30d dir. acc |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    mean = result["dual_tower"]["mean_std"]
    lines.append(
        "| dual tower (mean ± std, 3 seeds) | "
        + " | ".join(
            f"{mean[h][m]['mean']:.3f} ± {mean[h][m]['std']:.3f}"
            for h in ("7d", "30d")
            for m in ("pearson", "mse", "direction_accuracy")
        )
        + " |"
    )
    runs = result["dual_tower"]["runs"]
    rows = {
        **{
            f"dual tower, labels shuffled (seed {k.split('-')[1]})": v
            for k, v in runs.items()
            if k.startswith("shuffled")
        },
        **result["baselines"],
    }
    for name, figures in rows.items():
        if "shuffled" in name:  # collapsed models: show the raw correlation and the spread
            lines.append(
                f"| {name} | "
                + " | ".join(
                    f"{figures[h]['pearson']:.3f} (raw {figures[h]['raw_pearson']:+.2f}, "
                    f"spread {figures[h]['prediction_std']:.4f}) | {figures[h]['mse']:.3f} | "
                    f"{figures[h]['direction_accuracy']:.3f}"
                    for h in ("7d", "30d")
                )
                + " |"
            )
            continue
        lines.append(
            f"| {name} | "
            + " | ".join(
                f"{figures[h][m]:.3f}"
                for h in ("7d", "30d")
                for m in ("pearson", "mse", "direction_accuracy")
            )
            + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
