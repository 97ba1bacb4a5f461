"""Walk-forward evaluation: a model judged over most of its history, not its last segment.

The dates after the first ``min_train_fraction`` are cut into ``folds`` consecutive test
blocks. Fold k retrains the model on every date before its block (the last 15 % of those
dates validate and stop early, a purge of the longest horizon apart), fits the baselines on
the same training rows, and scores the block, which starts ``purge_days`` after its training
end. The blocks' out-of-sample predictions are then joined and judged once, the way a single
test segment is (``core.market.verdict``): intervals, the SPA p-value and the verdict rest
on every out-of-sample date, so a 5-year universe is not judged on its last 94 dates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from core.market.baselines import FITTED
from core.market.config import DataConfig
from core.market.evaluation import score_report
from core.market.models import model_spec
from core.market.predictions import baseline_predictions, model_predictions, outcomes
from core.market.splits import walk_forward_folds
from core.market.training import train_model
from core.market.verdict import EvaluationConfig, declare_primary, uncertainty_report

VALIDATION_SHARE = 0.15
"""Share of a fold's training dates that validate (early stopping), the latest ones."""


def walk_forward_evaluation(
    frame: pd.DataFrame,
    *,
    model_name: str,
    model_config: Any,
    training: Any,
    data: DataConfig,
    folds: int = 3,
    baselines: Sequence[str] = FITTED,
    callbacks: Sequence[Any] = (),
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
    config: EvaluationConfig | None = None,
    min_train_fraction: float = 0.4,
    keep_predictions: bool = False,
) -> dict[str, Any]:
    """Retrain on expanding windows, score each next block (model and baselines), and judge
    the joined out-of-sample predictions; ``callbacks``, ``should_stop`` and ``device``
    reach each fold's trainer (progress, cancel, where it trains); a callback with an
    ``on_stage(stage, index, total)`` method hears each fold start ("fold", 2, 3).

    Returns ``folds`` (per fold: its test span and each predictor's report), ``summary``
    (the mean and spread over folds of the headline figures) and ``joined``: the report of
    the joined predictions (``reports``, ``uncertainty`` with the verdict, the span); with
    ``keep_predictions``, also ``predictions``: each predictor's joined frame (not JSON)."""
    config = config or EvaluationConfig()
    spec = model_spec(model_name, model_config)
    dates = pd.to_datetime(frame["date"])
    results, joined = [], {}
    seed = int(getattr(training, "seed", 0))
    for index, (train_mask, test_mask) in enumerate(
        walk_forward_folds(
            dates,
            folds=folds,
            purge_days=data.effective_purge_days,
            min_train_fraction=min_train_fraction,
        ),
        start=1,
    ):
        if should_stop is not None and should_stop():
            break
        for callback in callbacks:  # progress reporters hear which fold trains
            if hasattr(callback, "on_stage"):
                callback.on_stage("fold", index, folds)
        subset = frame[dates <= dates[test_mask].max()]
        unique = np.unique(subset["date"])
        train_dates = len(np.unique(dates[train_mask]))
        train_fraction = (1 - VALIDATION_SHARE) * train_dates / len(unique)
        val_fraction = VALIDATION_SHARE * train_dates / len(unique)
        fold_data = replace(
            data,
            train_fraction=train_fraction,
            val_fraction=val_fraction,
            test_fraction=1 - train_fraction - val_fraction,
        )
        result = train_model(
            subset,
            model_name=model_name,
            model_config=model_config,
            training=training,
            data=fold_data,
            callbacks=callbacks,
            should_stop=should_stop,
            device=device,
        )
        predictors = {"model": model_predictions(spec, result.trainer.model, result.loaders.test)}
        predictors.update(
            baseline_predictions(spec, subset, result.loaders, names=baselines, seed=seed)
        )
        for name, predicted in predictors.items():
            joined.setdefault(name, []).append(predicted)
        results.append(
            {
                "test_start": str(result.loaders.test.meta["date"].min().date()),
                "test_end": str(result.loaders.test.meta["date"].max().date()),
                "test_rows": result.loaders.test.num_rows,
                "stopped_at_epoch": result.trainer.best_epoch,
                "reports": {n: score_report(spec, p, subset) for n, p in predictors.items()},
            }
        )
    if not results:
        raise ValueError("the walk-forward evaluation was stopped before its first fold")
    result = {
        "folds": results,
        "summary": _over_folds(results),
        "joined": judge_joined(spec, joined, frame, config=config, seed=seed),
    }
    if keep_predictions:
        result["predictions"] = {n: pd.concat(p, ignore_index=True) for n, p in joined.items()}
    return result


def judge_joined(
    spec: Any,
    parts: dict[str, list[pd.DataFrame]],
    frame: pd.DataFrame,
    *,
    config: EvaluationConfig,
    seed: int = 0,
) -> dict[str, Any]:
    """Every predictor's out-of-sample predictions over all folds, judged once on the rows
    they share: point figures, intervals, the SPA p-value and the verdict."""
    complete = {n: p for n, p in parts.items() if len(p) == len(parts["model"])}
    columns = [c for c in complete["model"][0].columns if c.startswith(("score_", "class_"))]
    predictors = {
        n: pd.concat(p, ignore_index=True)[["date", "ticker", *columns]]
        for n, p in complete.items()
    }
    keys = predictors["model"][["date", "ticker"]]
    for name in list(predictors):
        predictors[name] = keys.merge(predictors[name], on=["date", "ticker"], how="inner")
    rows = outcomes(spec, frame, predictors["model"])
    primary = declare_primary(config, rows, kind=spec.target.kind)
    reports = {
        name: score_report(
            spec, predicted, rows, strategy=config.strategy, seed=seed, use=primary["use"]
        )
        for name, predicted in predictors.items()
    }
    return {
        "model": spec.name,
        "targets": spec.targets,
        "test_start": str(pd.Timestamp(rows["date"].min()).date()),
        "test_end": str(pd.Timestamp(rows["date"].max()).date()),
        "test_rows": len(rows),
        "test_dates": int(rows["date"].nunique()),
        "evaluation_config": config.to_dict(),
        "reports": reports,
        "uncertainty": uncertainty_report(
            spec, predictors, rows, reports, primary=primary, seed=seed
        ),
    }


def _over_folds(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean and spread over folds of each predictor's correlation and rank IC."""
    summary: dict[str, Any] = {}
    for name in results[0]["reports"]:
        for h in results[0]["reports"][name]:
            values = [fold["reports"][name][h]["regression"]["pearson"] for fold in results]
            rank_ic = [fold["reports"][name][h]["finance"]["rank_ic"] for fold in results]
            summary.setdefault(name, {})[h] = {
                "pearson_mean": float(np.mean(values)),
                "pearson_std": float(np.std(values)),
                "rank_ic_mean": _mean_of_defined(rank_ic),
            }
    return summary


def _mean_of_defined(values: list[float]) -> float:
    """The mean of the finite values (NaN when none: a constant predictor's rank IC)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
