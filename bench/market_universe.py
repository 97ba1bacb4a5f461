"""Market models on a real stock universe, cross-sectional and walk-forward (issue 36).

    python -m bench.market_universe                          # the shared 100-stock sample
    python -m bench.market_universe --models dual_tower --folds 4
    python -m bench.market_universe --no-signal              # the control: a generated
                                                             # universe with nothing to find

Imports ``../shared/data/sp500-sample/prices/*.csv`` as they come (what the importer leaves
out is printed), builds the dataset with the defaults (cross-sectional: 97 tickers a date),
and for each model runs the walk-forward evaluation (``core.market.walk_forward``): expanding
windows, each fold retrained with the model's default architecture and the training given
here, the baselines refitted on the same rows, the folds' out-of-sample predictions joined
and judged once. Prints, per horizon and predictor, the rank IC with its Newey-West 95 %
interval, and the verdict against the best baseline. The dual tower learns the trend target
(``model.target: trend``): relevance is a co-movement forecast, judged as a hedge, not a
return forecast. ``--json FILE`` writes every figure.
Figures in docs/models.md, "A real universe: the S&P 500 sample".
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500-sample" / "prices"
MODELS = ("dual_tower", "lstm_attention")
BASELINES = ("majority", "momentum", "linear", "boosting")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", default=str(SAMPLE / "*.csv"), help="price files (a glob)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--folds", type=int, default=6, help="walk-forward test blocks")
    parser.add_argument(
        "--min-train", type=float, default=0.3, help="share of dates only ever trained on"
    )
    parser.add_argument(
        "--training",
        default='{"batch_size": 512, "epochs": 30, "early_stopping_patience": 6}',
        help="training overrides as JSON",
    )
    parser.add_argument("--no-signal", action="store_true", help="a generated control universe")
    parser.add_argument(
        "--seeds",
        default="42",
        help="training seeds, comma-separated; with several, the mean of the seeds' models "
        "is judged as one (what `trendlab train --seeds` reports as the experiment)",
    )
    parser.add_argument("--json", default=None, help="write every figure to this file")
    args = parser.parse_args()

    import core  # noqa: F401  (thread and OpenMP settings)
    from core.market.config import DataConfig
    from core.market.evaluation import ensemble_predictions
    from core.market.importers import import_market
    from core.market.models import model_spec
    from core.market.sources import build_market_dataset, synthetic_data
    from core.market.verdict import EvaluationConfig
    from core.market.walk_forward import judge_joined, walk_forward_evaluation

    started = time.perf_counter()
    if args.no_signal:
        tickers = [f"N{i:02d}" for i in range(40)]
        data = synthetic_data(
            tickers, "2013-01-01", "2017-12-31", seed=11, signal=False, horizons=[7, 30]
        )
    else:
        data, _ = import_market([Path(p) for p in sorted(glob.glob(args.prices))])
        tickers = sorted(data.prices["ticker"].unique())
        left_out = data.notes.get("left_out")
        if left_out is not None:
            print("\n".join(left_out.describe()))
    config = DataConfig(tickers=list(tickers))
    frame = build_market_dataset(data, config)
    print(
        f"dataset: {len(frame):,} rows, {frame['ticker'].nunique()} tickers, "
        f"{frame['date'].min().date()} to {frame['date'].max().date()}, built in "
        f"{time.perf_counter() - started:.0f} s"
    )
    overrides = json.loads(args.training)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    for name in args.models.split(","):
        spec = model_spec(name)
        architecture = {"target": "trend"} if name == "dual_tower" else {}
        model_config = spec.config_class.from_dict(architecture, partial=True)
        members = []
        for seed in seeds:
            training = spec.training_config_class.from_dict(
                {**overrides, "seed": seed}, partial=True
            )
            began = time.perf_counter()
            result = walk_forward_evaluation(
                frame,
                model_name=name,
                model_config=model_config,
                training=training,
                data=config,
                folds=args.folds,
                baselines=BASELINES,
                min_train_fraction=args.min_train,
                keep_predictions=True,
            )
            seconds = time.perf_counter() - began
            members.append(result.pop("predictions"))
            results[f"{name} seed {seed}"] = {"seconds": seconds, **result}
            print(table(f"{name} seed {seed}", result, seconds))
        if len(seeds) > 1:
            mean = {**members[0], "model": ensemble_predictions([m["model"] for m in members])}
            spec = model_spec(name, model_config)
            joined = judge_joined(
                spec,
                {n: [p] for n, p in mean.items()},
                frame,
                config=EvaluationConfig(),
                seed=seeds[0],
            )
            results[f"{name} mean"] = {"joined": joined}
            print(table(f"{name}, the mean of seeds {args.seeds}", {"joined": joined}, 0.0))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def table(name: str, result: dict, seconds: float) -> str:
    """The joined out-of-sample figures of one model's walk-forward, as markdown."""
    joined = result["joined"]
    judged = joined["uncertainty"]
    folds = result.get("folds", [])
    lines = [
        f"\n{name}: {len(folds)} folds, out of sample {joined['test_start']} to "
        f"{joined['test_end']} ({joined['test_dates']} dates, {joined['test_rows']:,} rows), "
        f"{seconds:.0f} s; best epochs {[f['stopped_at_epoch'] for f in folds]}",
        f"primary: {judged['primary']['name']} ({judged['primary']['reason']})",
        "",
        "| horizon | predictor | rank IC | Newey-West 95 % | ICIR | market-neutral Sharpe |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for horizon, section in judged["horizons"].items():
        for predictor, ic in section["rank_ic"].items():
            if not np.isfinite(ic["ic_mean"]):
                continue  # a constant (majority) has no rank IC
            finance = joined["reports"][predictor][horizon]["finance"]
            sharpe = finance.get("market_neutral", {}).get("sharpe", float("nan"))
            lines.append(
                f"| {horizon} | {predictor} | {ic['ic_mean']:+.4f} | "
                f"{ic['ic_low']:+.4f}..{ic['ic_high']:+.4f} | {ic['icir']:+.3f} | "
                f"{sharpe:+.2f} |"
            )
        primary = section["primary"]
        lines.append(
            f"| {horizon} | lead over {primary['baseline']} | {primary['difference']:+.4f} | "
            f"{primary['low']:+.4f}..{primary['high']:+.4f} (bootstrap, "
            f"{primary.get('family_level', 0.95):.0%}) | SPA {primary['spa_pvalue']:.3f} | |"
        )
    lines.append(f"\nverdict: {judged['verdict']['sentence']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
