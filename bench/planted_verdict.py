"""The dual tower on the demo's planted market, judged against every baseline (issue 22).

    python -m bench.planted_verdict --seeds 42,1,2              # as shipped (input gates on)
    python -m bench.planted_verdict --seeds 42 --gate-l1 0      # gates off
    python -m bench.planted_verdict --market-seed 7 --seeds 42  # another generated market
    python -m bench.planted_verdict --seeds 42,1,2 --ensemble   # and the mean of the three

Per training seed and horizon: the model's and boosting's test correlation with the
relevance label, the lead over the best rival on the primary metric with its 95 % interval
and SPA p-value, and the headline verdict; then the correlation an MLP reaches from only the
three inputs the planted sensitivity reads (``vix_level``, ``ret_63d``,
``vol_ratio_21_126``), fitted on the training segment. With ``--ensemble``, the same for the
mean of the seeds' models (each trained alone, their scores and class probabilities
averaged and judged as one: what ``trendlab train --seeds`` reports as the experiment's
verdict). About 75 s per
seed on 2 cores.
Figures in docs/models.md, "Input gates on the planted market".
"""

from __future__ import annotations

import argparse
import json

import numpy as np

PLANTED_INPUTS = ["vix_level", "ret_63d", "vol_ratio_21_126"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42", help="training seeds, comma-separated")
    parser.add_argument("--market-seed", type=int, default=None, help="default: the demo's")
    parser.add_argument("--gate-l1", type=float, default=None, help="default: the config's")
    parser.add_argument(
        "--training", default="{}", help="training overrides as JSON, e.g. '{\"ema_decay\": 0.999}'"
    )
    parser.add_argument("--no-mlp", action="store_true", help="skip the three-input MLP")
    parser.add_argument(
        "--ensemble", action="store_true", help="also judge the mean of the seeds' models"
    )
    args = parser.parse_args()
    training_overrides = json.loads(args.training)

    import core  # noqa: F401  (thread and OpenMP settings)
    from core.market.config import DEFAULT_TICKERS, DataConfig
    from core.market.evaluation import ensemble_predictions, evaluate_model, judge_predictions
    from core.market.models import model_spec
    from core.market.predictions import model_predictions
    from core.market.sources import (
        DEMO_END,
        DEMO_SEED,
        DEMO_START,
        build_market_dataset,
        synthetic_data,
    )
    from core.market.training import train_model

    market_seed = DEMO_SEED if args.market_seed is None else args.market_seed
    data = synthetic_data(
        DEFAULT_TICKERS, DEMO_START, DEMO_END, seed=market_seed, signal=True, horizons=[7, 30]
    )
    frame = build_market_dataset(data, DataConfig())
    spec = model_spec("dual_tower")
    overrides = {} if args.gate_l1 is None else {"input_gate_l1": args.gate_l1}
    gates = "as configured" if args.gate_l1 is None else args.gate_l1
    print(f"market seed {market_seed}, input_gate_l1 {gates}, training {training_overrides}")
    members = []
    for seed in (int(s) for s in args.seeds.split(",")):
        result = train_model(
            frame,
            model_name="dual_tower",
            model_config=spec.config_class.from_dict(overrides, partial=True),
            training=spec.training_config_class.from_dict(
                {**training_overrides, "seed": seed}, partial=True
            ),
        )
        trainer = result.trainer
        members.append(model_predictions(result.spec, trainer.model, result.loaders.test))
        evaluation = evaluate_model(result.spec, trainer.model, result.loaders, frame)
        verdict = _print_judgement(f"seed {seed}", evaluation.report)
        print(
            f"seed {seed} verdict: {verdict}"
            f" (best epoch {trainer.best_epoch} of {len(trainer.history)})"
        )
    if args.ensemble and len(members) > 1:
        combined = ensemble_predictions(members)
        evaluation = judge_predictions(result.spec, combined, result.loaders, frame)
        tag = f"mean of seeds {args.seeds}"
        print(f"{tag} verdict: {_print_judgement(tag, evaluation.report)}")
    if not args.no_mlp:
        _three_inputs(frame, result.loaders)


def _print_judgement(tag: str, report: dict) -> str:
    """One line per horizon: correlations, the lead over the best rival, its interval and
    SPA p-value; returns the headline verdict."""
    reports, judged = report["reports"], report["uncertainty"]
    metric = judged["primary"]["name"]
    for horizon, section in judged["horizons"].items():
        lead = section["primary"]
        model, boosting = (
            reports[n][horizon]["regression"]["pearson"] for n in ("model", "boosting")
        )
        hedges = {n: r[horizon]["hedge"] for n, r in reports.items() if "hedge" in r[horizon]}
        shown = ", ".join(f"{n} {v:+.3f}" for n, v in hedges.items())
        interval = (
            f"({lead['low']:+.3f}..{lead['high']:+.3f}), SPA p-value {lead['spa_pvalue']:.3f}"
            if section.get("judged", True)
            else f"(not judged: {section['blocks']:.1f} independent blocks)"
        )
        print(
            f"{tag} {horizon}: corr model {model:.3f} boosting {boosting:.3f}; hedge {shown};"
            f" {metric} lead over {lead['baseline']} {lead['difference']:+.3f} {interval},"
            f" blocks of {section['block_dates']}"
        )
    print(f"{tag}: {judged['verdict']['sentence']}")
    return judged["verdict"]["verdict"]


def _three_inputs(frame, loaders) -> None:
    """An MLP on the three planted inputs, trained on the training segment's dates."""
    from sklearn.neural_network import MLPRegressor

    train_dates, test_dates = set(loaders.train.meta["date"]), set(loaders.test.meta["date"])
    for h in (7, 30):
        target = f"relevance_{h}d"
        usable = frame.dropna(subset=[target, *PLANTED_INPUTS])
        train = usable[usable["date"].isin(train_dates)]
        test = usable[usable["date"].isin(test_dates)]
        mlp = MLPRegressor(
            hidden_layer_sizes=(32, 16),
            alpha=1e-3,
            max_iter=300,
            early_stopping=True,
            random_state=0,
        ).fit(train[PLANTED_INPUTS], train[target])
        corr = np.corrcoef(mlp.predict(test[PLANTED_INPUTS]), test[target])[0, 1]
        print(f"{h}d: an MLP on {', '.join(PLANTED_INPUTS)} alone: test corr {corr:.3f}")


if __name__ == "__main__":
    main()
