"""Model quality on the documented synthetic recipe: the dual tower vs baselines and oracle.

    python -m bench.quality            # writes bench/quality.json, prints a Markdown table

Recipe: 100 synthetic tickers, 2015-01-01..2024-12-31, generator seed 42, with signal; the
default DataConfig split (70/15/15, 30-day purge). The dual tower trains with
bench/configs/dual_tower_synthetic.yaml and dual_tower_synthetic_model.yaml under three
seeds, and three more times on shuffled training labels (a control that must land at
chance). Baselines are fit on the same training rows and scored on the same test rows,
against the latent (oracle) relevance. Every predictor also gets its correlation with the
label's noise (``noise_pearson``, the leak detector
``core.market.evaluation.noise_correlation``). Each run is also judged against every fitted
baseline at once: the headline verdict on the primary metric (``uncertainty_report``) and
the run as one try (``tries_report``: the SPA p-value per horizon and its verdict).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from core.market.config import DataConfig, DualTowerModelConfig, TrainingConfig
from core.market.evaluation import score_report, seed_level
from core.market.models import model_spec
from core.market.predictions import baseline_predictions, model_predictions, outcomes
from core.market.sources import build_market_dataset, synthetic_data
from core.market.training import train_model
from core.market.tries import tries_report
from core.market.verdict import (
    NOT_BASELINES,
    EvaluationConfig,
    declare_primary,
    uncertainty_report,
)

HERE = Path(__file__).resolve().parent
HORIZONS = ("7d", "30d")
CONFIG = HERE / "configs" / "dual_tower_synthetic.yaml"
MODEL_CONFIG = HERE / "configs" / "dual_tower_synthetic_model.yaml"
OUTPUT = HERE / "quality.json"


def summary(report: dict) -> dict:
    return {
        h: {
            "pearson": section["vs_oracle"]["pearson"],
            "raw_pearson": section["vs_oracle"]["raw_pearson"],
            "prediction_std": section["vs_oracle"]["prediction_std"],
            "skill": section["vs_oracle"]["skill"],
            "noise_pearson": section["vs_oracle"]["noise_pearson"],
            "mse": section["vs_oracle"]["mse"],
            "direction_accuracy": section["vs_oracle"]["direction_accuracy"],
            "class_accuracy": section["vs_oracle"]["class_accuracy"],
            "label_pearson": section["regression"]["pearson"],
            "rank_ic": section["finance"]["rank_ic"],
            "level": seed_level(section),
        }
        for h, section in report.items()
    }


def against_ridge(spec, predictions, ridge, dataset, seed: int) -> dict:
    """The model against ridge alone (the issue's yardstick): the overall verdict, the
    correlation comparison per horizon, and the collapse check."""
    rows = outcomes(spec, dataset, predictions)
    predictors = {"model": predictions, "linear": ridge}
    reports = {name: score_report(spec, frame, dataset) for name, frame in predictors.items()}
    judged = uncertainty_report(spec, predictors, rows, reports, seed=seed)
    return {
        "verdict": judged["verdict"]["verdict"],
        "sentence": judged["verdict"]["sentence"],
        "pearson": {
            h: next(c["sentence"] for c in section["comparisons"] if c["metric"] == "pearson")
            for h, section in judged["horizons"].items()
        },
        "collapsed": judged["collapse"]["collapsed"],
        "collapse_reasons": judged["collapse"]["reasons"],
    }


def against_baselines(spec, predictions, fitted, dataset, seed: int, primary: str = "auto") -> dict:
    """The model against every fitted baseline (and the constant mean): the headline verdict
    on the primary metric (``primary``: declared, or 'auto'), and the run as one try (SPA
    p-value per horizon, its verdict)."""
    rows = outcomes(spec, dataset, predictions)
    predictors = {"model": predictions, **fitted}
    reports = {name: score_report(spec, frame, dataset) for name, frame in predictors.items()}
    declared = declare_primary(EvaluationConfig(primary=primary), rows, kind=spec.target.kind)
    judged = uncertainty_report(spec, predictors, rows, reports, primary=declared, seed=seed)
    tries = tries_report(
        spec, {"dual tower": predictions}, fitted, rows, primary=judged["primary"], seed=seed
    )
    return {
        "primary": judged["primary"]["name"],
        "verdict": judged["verdict"]["verdict"],
        "sentence": judged["verdict"]["sentence"],
        "collapsed": judged["collapse"]["collapsed"],
        "horizons": {
            h: {
                "spa_pvalue": section["spa_pvalue"],
                "best_baseline": section["best_baseline"],
                "blocks": section["blocks"],
                "primary": judged["horizons"][h]["primary"]["sentence"],
            }
            for h, section in tries["horizons"].items()
        },
        "tries_verdict": tries["verdict"]["verdict"],
        "tries_sentence": tries["verdict"]["sentence"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--primary",
        default="auto",
        choices=["auto", "pearson", "rank_ic"],
        help="the metric the verdicts against all baselines rest on (auto: rank IC here)",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help="JSON file to write")
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
    model_config = DualTowerModelConfig.load_yaml(MODEL_CONFIG, partial=True)
    runs, loaders, fitted = {}, None, None
    if args.control_only:
        previous = json.loads(args.output.read_text())
        runs = previous["dual_tower"]["runs"]
    controls = [f"shuffled-{seed}" for seed in args.seeds]
    for seed in controls if args.control_only else [*args.seeds, *controls]:
        shuffled = isinstance(seed, str)
        training = TrainingConfig.from_dict(
            {**base, "seed": int(seed.split("-")[1]) if shuffled else seed}
        )
        result = train_model(
            dataset,
            model_name="dual_tower",
            model_config=model_config,
            training=training,
            shuffle_labels=shuffled,
        )
        predictions = model_predictions(spec, result.trainer.model, result.loaders.test)
        loaders = loaders or result.loaders
        fitted = fitted or baseline_predictions(spec, dataset, loaders)
        rivals = {name: frame for name, frame in fitted.items() if name not in NOT_BASELINES}
        runs[str(seed)] = {
            **summary(score_report(spec, predictions, dataset)),
            "epochs": len(result.history),
            "best_epoch": result.trainer.best_epoch,
            "against_ridge": against_ridge(spec, predictions, fitted["linear"], dataset, seed=0),
            "against_baselines": against_baselines(
                spec, predictions, rivals, dataset, seed=0, primary=args.primary
            ),
        }
        print(f"dual_tower seed {seed}: {runs[str(seed)]['7d']}", flush=True)
    if args.control_only:
        previous["dual_tower"]["runs"] = runs
        args.output.write_text(json.dumps(previous, indent=2) + "\n")
        print(render(previous))
        return
    baselines = {
        name: summary(score_report(spec, frame, dataset)) for name, frame in fitted.items()
    }
    seeded = [runs[str(s)] for s in args.seeds]
    aggregate = {
        h: {
            metric: {
                "mean": float(np.mean([r[h][metric] for r in seeded])),
                "std": float(np.std([r[h][metric] for r in seeded])),
            }
            for metric in (
                "pearson",
                "mse",
                "direction_accuracy",
                "class_accuracy",
                "noise_pearson",
            )
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
            "config": [CONFIG.name, MODEL_CONFIG.name],
            "train_rows": loaders.train.num_rows,
            "test_rows": loaders.test.num_rows,
        },
        "dual_tower": {"runs": runs, "mean_std": aggregate},
        "baselines": baselines,
        "seconds": time.time() - started,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))


METRICS = ("pearson", "mse", "direction_accuracy", "noise_pearson")


def render(result: dict) -> str:
    """A Markdown table: per horizon correlation, MSE and direction accuracy against the
    oracle, and the correlation with the label noise (the leak detector)."""
    header = " | ".join(f"{h} corr | {h} MSE | {h} dir. acc | {h} noise corr" for h in HORIZONS)
    lines = [f"| predictor | {header} |", "| --- " * (1 + 4 * len(HORIZONS)) + "|"]
    mean = result["dual_tower"]["mean_std"]
    cells = [
        f"{mean[h][m]['mean']:.3f} ± {mean[h][m]['std']:.3f}" for h in HORIZONS for m in METRICS
    ]
    lines.append(f"| dual tower (mean ± std, 3 seeds) | {' | '.join(cells)} |")
    controls = {
        f"dual tower, labels shuffled (seed {key.split('-')[1]})": figures
        for key, figures in result["dual_tower"]["runs"].items()
        if key.startswith("shuffled")
    }
    for name, figures in {**controls, **result["baselines"]}.items():
        cells = []
        for h in HORIZONS:
            f = figures[h]
            corr = f"{f['pearson']:.3f}"
            if name in controls:  # collapsed models: the raw correlation and the spread too
                corr += f" (raw {f['raw_pearson']:+.2f}, spread {f['prediction_std']:.4f})"
            noise = f.get("noise_pearson", float("nan"))
            cells += [corr, f"{f['mse']:.3f}", f"{f['direction_accuracy']:.3f}", f"{noise:+.3f}"]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    lines.append("")
    for key, run in result["dual_tower"]["runs"].items():
        judged = run.get("against_ridge")
        if judged:
            flag = "collapsed" if judged["collapsed"] else "not collapsed"
            lines.append(
                f"- run {key}, against ridge: **{judged['verdict']}** ({flag}); "
                + "; ".join(judged["pearson"].values())
            )
        judged = run.get("against_baselines")
        if judged:
            spa = ", ".join(
                f"{h} {s['spa_pvalue']:.3f} (vs {s['best_baseline']}, {s['blocks']:.1f} blocks)"
                for h, s in judged["horizons"].items()
            )
            lines.append(
                f"- run {key}, against all baselines on {judged['primary']}: headline "
                f"**{judged['verdict']}** ({judged['sentence']}); as one try "
                f"**{judged['tries_verdict']}** ({judged['tries_sentence']}); SPA p-value {spa}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
