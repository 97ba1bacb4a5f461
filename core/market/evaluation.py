"""Evaluation: a model beside baselines and (on synthetic data) the oracle, on the same rows.

Every predictor's frame of (date, ticker, score_hd, class_hd) on the test rows
(``core.market.predictions``) goes to ``score_report``, which computes the same metrics for
each against the realised labels and, when the dataset has oracle columns, against the latent
truth. Direction accuracy in the seed's sense (seed 000: "positive if relevance > 0") compares
signs; the 3-class accuracy is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.market.baselines import MARKET_BASELINES, oracle_classes, oracle_column
from core.market.features import CONTEXT_FEATURES, MASK_COLUMNS, STOCK_FEATURES
from core.market.loaders import Loaders
from core.market.metrics import (
    classification_metrics,
    hit_rate,
    information_coefficients,
    regression_metrics,
)
from core.market.models import ModelSpec
from core.market.predictions import (
    BaselineCache,
    baseline_predictions,
    horizons_in,
    model_predictions,
    outcomes,
)
from core.market.strategy import StrategyConfig, strategy_figures
from core.market.uses import default_primary, use_for
from core.market.verdict import EvaluationConfig, declare_primary, uncertainty_report

__all__ = [
    "BASELINES",
    "SEED_LEVELS",
    "Evaluation",
    "baseline_predictions",
    "context_group_importance",
    "divergent_predictions",
    "ensemble_predictions",
    "evaluate_model",
    "finance_rows",
    "horizons_in",
    "input_gate_scales",
    "metrics_table",
    "model_predictions",
    "noise_correlation",
    "outcomes",
    "score_report",
    "seed_level",
    "strategy_columns",
]

SEED_LEVELS = {  # seed 000's targets for relevance: (max MSE, min correlation, min direction acc)
    "excellent": (0.08, 0.85, 0.75),
    "good": (0.10, 0.75, 0.70),
    "reasonable": (0.15, 0.60, 0.65),
}


def finance_rows(score: np.ndarray, rows: pd.DataFrame, h: int) -> pd.DataFrame:
    """(date, ticker, score, forward_return, next_return): the input of the finance metrics."""
    return rows[["date", "ticker"]].assign(
        score=np.asarray(score, float),
        forward_return=rows[f"fwd_return_{h}d"].to_numpy(),
        next_return=rows["next_return"].to_numpy(),
    )


def noise_correlation(score: np.ndarray, label: np.ndarray, oracle: np.ndarray) -> float:
    """Correlation of a prediction with the label's noise: the leak detector.

    The noise is what is left of the realised label after its least-squares fit on the
    oracle (the label is an attenuated, noisy measurement of the latent relevance): the future
    shocks that no past feature can foresee. A leak-free predictor lands at 0 up to sampling
    error, however it was trained; one that saw test labels does not. Unlike the correlation
    with the oracle, this needs no collapsed-model rule: it reads the raw scores."""
    label, oracle = np.asarray(label, float), np.asarray(oracle, float)
    if np.std(oracle) < 1e-12:  # no planted signal (the control): the label is all noise
        noise = label - label.mean()
    else:
        slope, intercept = np.polyfit(oracle, label, 1)
        noise = label - (slope * oracle + intercept)
    if np.std(score) < 1e-12 or np.std(noise) < 1e-12:
        return 0.0
    return float(np.corrcoef(score, noise)[0, 1])


def score_report(
    spec: ModelSpec,
    predictions: pd.DataFrame,
    dataset: pd.DataFrame,
    *,
    strategy: StrategyConfig | None = None,
    seed: int = 0,
    use: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Metrics of one predictor per horizon: vs labels, vs the oracle, finance (IC, and the
    trading figures of ``core.market.strategy`` that the target's ``use`` trades: none for
    a co-movement target, whose ``hedge`` figure stands instead). Without ``use``, the use
    of the target's 'auto' primary metric on these rows (``core.market.uses``)."""
    strategy = strategy or StrategyConfig()
    if use is None:
        tickers = predictions.groupby("date")["ticker"].nunique().median()
        metric, _ = default_primary(spec.target.kind, int(tickers) if len(predictions) else 0)
        use = use_for(spec.target.kind, metric).to_dict()
    rows = outcomes(spec, dataset, predictions)
    report: dict[str, Any] = {}
    for h in horizons_in(predictions):
        score_column, class_column = spec.target.columns(h)
        score = predictions[f"score_{h}d"].to_numpy(dtype=float)
        predicted_class = predictions[f"class_{h}d"].to_numpy().astype(int)
        target = rows[score_column].to_numpy(dtype=float)
        section: dict[str, Any] = {
            "rows": len(rows),
            "regression": regression_metrics(score, target),
            "classification": classification_metrics(
                predicted_class,
                rows[class_column].to_numpy().astype(int),
                spec.target.class_names,
            ),
            "direction_accuracy": float(np.mean(np.sign(score) == np.sign(target))),
        }
        oracle = oracle_column(spec, h)
        if oracle in rows.columns and rows[oracle].notna().all():
            truth = rows[oracle].to_numpy(dtype=float)
            section["vs_oracle"] = {
                **regression_metrics(score, truth),
                "direction_accuracy": float(np.mean(np.sign(score) == np.sign(truth))),
                "class_accuracy": float(np.mean(predicted_class == oracle_classes(spec, truth))),
                "noise_pearson": noise_correlation(score, target, truth),
            }
        if spec.target.kind == "co-movement":
            section["hedge"] = float(np.mean(2 * score * target - score**2))
        finance = finance_rows(score, rows, h)
        section["finance"] = {
            **information_coefficients(finance),
            "hit_rate": hit_rate(score, finance["forward_return"].to_numpy()),
        }
        if use["strategies"]:
            section["finance"].update(
                strategy_figures(
                    finance, strategy, horizon_days=h, seed=seed, kinds=tuple(use["strategies"])
                )
            )
        report[f"{h}d"] = section
    return report


@dataclass
class Evaluation:
    """A model's test predictions beside every baseline's, and their reports.

    ``predictions`` has one row per test row: date, ticker, the outcomes (targets, oracle,
    forward and next-day returns), the model's ``score_hd`` / ``class_hd`` / ``prob{i}_hd``
    and extras (attention, embedding projections), and ``{baseline}_score_hd`` /
    ``{baseline}_class_hd`` per baseline. ``report`` holds ``reports`` per predictor and, for
    models that read context, ``group_importance``.
    """

    report: dict[str, Any]
    predictions: pd.DataFrame

    @property
    def predictors(self) -> list[str]:
        return list(self.report["reports"])

    @property
    def horizons(self) -> list[int]:
        """The horizons evaluated (the dataset's), e.g. [7, 30]."""
        return [int(key.removesuffix("d")) for key in self.report["reports"]["model"]]

    def predictor(self, name: str) -> pd.DataFrame:
        """One predictor's (date, ticker, score_hd, class_hd) columns."""
        prefix = "" if name == "model" else f"{name}_"
        columns = {
            f"{prefix}{kind}_{h}d": f"{kind}_{h}d"
            for h in self.horizons
            for kind in ("score", "class")
        }
        return self.predictions[["date", "ticker", *columns]].rename(columns=columns)


BASELINES = tuple(MARKET_BASELINES)
"""Every market baseline's name, in the registry's order (``core.market.predictions``)."""


def evaluate_model(
    spec: ModelSpec,
    model: nn.Module,
    loaders: Loaders,
    dataset: pd.DataFrame,
    *,
    baselines: Sequence[str] = BASELINES,
    seed: int = 0,
    config: EvaluationConfig | None = None,
    cache: BaselineCache | None = None,
) -> Evaluation:
    """The model and each baseline on the test rows, with per-row predictions kept; the
    primary metric is declared from ``config`` and the test rows before any is scored.
    ``cache`` keeps the baselines' predictions for every run on the same split."""
    predicted = model_predictions(spec, model, loaders.test, extras=True)
    evaluation = judge_predictions(
        spec,
        predicted,
        loaders,
        dataset,
        baselines=baselines,
        seed=seed,
        config=config,
        cache=cache,
    )
    report = evaluation.report
    if "context" in spec.inputs:
        report["group_importance"] = context_group_importance(
            spec, model, loaders.test, horizons=loaders.horizons, seed=seed
        )
    gates = input_gate_scales(model)
    if gates:
        report["input_gates"] = gates
    return evaluation


def judge_predictions(
    spec: ModelSpec,
    predicted: pd.DataFrame,
    loaders: Loaders,
    dataset: pd.DataFrame,
    *,
    baselines: Sequence[str] = BASELINES,
    seed: int = 0,
    config: EvaluationConfig | None = None,
    cache: BaselineCache | None = None,
) -> Evaluation:
    """Point figures, intervals and the verdict of ``predicted`` (date, ticker, score_hd,
    class_hd, probabilities: one model's, or an ensemble's) against the baselines fit on
    ``loaders``' training rows, on ``predicted``'s rows (an ensemble's shared rows may be
    fewer than ``loaders``' test rows: a weekly LSTM's beside a daily model's)."""
    config = config or EvaluationConfig()
    primary = declare_primary(config, loaders.test.meta, kind=spec.target.kind)
    rows = outcomes(spec, dataset, predicted)
    predictors = {"model": predicted[["date", "ticker", *_score_columns(predicted)]]}
    keys = predicted[["date", "ticker"]]
    for name, frame in baseline_predictions(
        spec, dataset, loaders, seed=seed, names=baselines, cache=cache
    ).items():
        predictors[name] = keys.merge(frame, on=["date", "ticker"])  # the rows judged
    clashing = {c: f"label_{c}" for c in rows.columns if c in predicted.columns}
    clashing.pop("date"), clashing.pop("ticker")  # the 3-class label is named class_hd too
    wide = rows.rename(columns=clashing).merge(predicted, on=["date", "ticker"])
    for name, frame in predictors.items():
        if name != "model":
            renamed = frame.rename(columns={c: f"{name}_{c}" for c in _score_columns(frame)})
            wide = wide.merge(renamed, on=["date", "ticker"], how="left")
    report: dict[str, Any] = {
        "model": spec.name,
        "targets": spec.targets,
        "test_rows": len(wide),
        "evaluation_config": config.to_dict(),
        "reports": {
            name: score_report(
                spec, frame, rows, strategy=config.strategy, seed=seed, use=primary["use"]
            )
            for name, frame in predictors.items()
        },
    }
    report["uncertainty"] = uncertainty_report(
        spec, predictors, rows, report["reports"], primary=primary, seed=seed
    )
    return Evaluation(report, wide)


def _score_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(("score_", "class_", "prob"))]


def metrics_table(
    reports: dict[str, dict[str, Any]], horizon: str, uncertainty: dict[str, Any] | None = None
) -> pd.DataFrame:
    """One row per predictor with the headline figures of one horizon ('7d', '30d', ...);
    with the report's ``uncertainty``, the 95 % intervals of correlation and rank IC too."""
    intervals = (uncertainty or {}).get("horizons", {}).get(horizon, {}).get("intervals", {})
    rows = []
    for name, sections in reports.items():
        section = sections[horizon]
        finance = section["finance"]
        bounds = intervals.get(name, {})
        rows.append(
            {
                "predictor": name,
                "corr": section["regression"]["pearson"],
                **({"corr 95%": _shown_interval(bounds["pearson"])} if bounds else {}),
                "MSE": section["regression"]["mse"],
                "skill": section["regression"]["skill"],
                "direction acc": section["direction_accuracy"],
                "accuracy": section["classification"]["accuracy"],
                "macro F1": section["classification"]["macro_f1"],
                **(
                    {"hedge": section["hedge"]}
                    | ({"hedge 95%": _shown_interval(bounds["hedge"])} if "hedge" in bounds else {})
                    if "hedge" in section
                    else {}
                ),
                "rank IC": finance["rank_ic"],
                **({"rank IC 95%": _shown_interval(bounds["rank_ic"])} if bounds else {}),
                "hit rate": finance["hit_rate"],
                **strategy_columns(finance),
                "corr vs oracle": section.get("vs_oracle", {}).get("pearson", np.nan),
                # Leak check: correlation with the label's unforeseeable part, ~0 when clean
                "corr vs label noise": section.get("vs_oracle", {}).get("noise_pearson", np.nan),
                "seed level": seed_level(section),
            }
        )
    return pd.DataFrame(rows)


def strategy_columns(finance: dict[str, Any]) -> dict[str, Any]:
    """The figures of the portfolio the use trades: the market-neutral (or, with too few
    tickers for a cross-section, the per-ticker) Sharpe with its interval, net return,
    turnover and drawdown, and the long-only excess return where the use is cross-sectional.
    Nothing for a use that trades nothing (a co-movement forecast)."""
    kind = next((k for k in ("market_neutral", "time_series") if k in finance), None)
    if kind is None:
        return {}
    traded = finance[kind]
    bounds = [traded.get("sharpe_low", np.nan), traded.get("sharpe_high", np.nan)]
    label = "market-neutral" if kind == "market_neutral" else "per-ticker"
    columns = {
        f"Sharpe ({label})": traded.get("sharpe", np.nan),
        "Sharpe 95%": _shown_interval(bounds),
        "net return": traded.get("net_return", np.nan),
        "turnover": traded.get("turnover", np.nan),
        "max drawdown": traded.get("max_drawdown", np.nan),
    }
    if "long_only" in finance:
        columns["long-only excess"] = finance["long_only"].get("net_return", np.nan)
    return columns


def _shown_interval(bounds: list[float]) -> str:
    low, high = bounds
    return "-" if not (np.isfinite(low) and np.isfinite(high)) else f"{low:+.3f}..{high:+.3f}"


def seed_level(section: dict[str, Any], against: str = "vs_oracle") -> str:
    """The best of seed 000's levels this horizon reaches ('below' when none)."""
    figures = section.get(against)
    if figures is None:
        figures = {**section["regression"], "direction_accuracy": section["direction_accuracy"]}
    for level, (mse, corr, accuracy) in SEED_LEVELS.items():
        if (
            figures["mse"] < mse
            and figures["pearson"] > corr
            and figures["direction_accuracy"] > accuracy
        ):
            return level
    return "below"


def ensemble_predictions(
    members: Sequence[pd.DataFrame], weights: Sequence[float] | None = None
) -> pd.DataFrame:
    """Weighted mean of members' scores and class probabilities on their common rows;
    the class is the arg-max of the mean probabilities. Members must share their classes."""
    weights = list(weights or [1.0] * len(members))
    common = members[0][["date", "ticker"]]
    for member in members[1:]:
        common = common.merge(member[["date", "ticker"]], on=["date", "ticker"])
    if common.empty:
        raise ValueError("the ensemble's members share no test rows")
    aligned = [common.merge(m, on=["date", "ticker"], how="left") for m in members]
    result = common.copy()
    total = sum(weights)
    for h in horizons_in(members[0]):
        probability_columns = [
            c for c in aligned[0].columns if c.endswith(f"_{h}d") and c.startswith("prob")
        ]
        result[f"score_{h}d"] = (
            sum(w * m[f"score_{h}d"] for w, m in zip(weights, aligned, strict=True)) / total
        )
        for column in probability_columns:
            result[column] = (
                sum(w * m[column] for w, m in zip(weights, aligned, strict=True)) / total
            )
        result[f"class_{h}d"] = result[probability_columns].to_numpy().argmax(axis=1)
    return result


def divergent_predictions(predictions: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Rows where the shortest and the longest horizon's scores disagree most (seed 000's
    analysis of the 7-day against the 30-day score)."""
    horizons = horizons_in(predictions)
    gap = (predictions[f"score_{horizons[0]}d"] - predictions[f"score_{horizons[-1]}d"]).abs()
    return predictions.assign(divergence=gap).nlargest(top, "divergence")


def context_group_importance(
    spec: ModelSpec, model: nn.Module, loader: Any, *, horizons: Sequence[int], seed: int = 0
) -> dict[str, float]:
    """Permutation importance per context group: rise in the MSE summed over horizons when the
    group's columns (values and mask) are shuffled across rows. Dual-tower models only."""
    from core.market.features import CONTEXT_FEATURE_GROUPS

    tensors = loader.tensors
    generator = torch.Generator().manual_seed(seed)
    model = model.eval()

    @torch.no_grad()
    def mse(context: torch.Tensor, mask: torch.Tensor) -> float:
        outputs = model(context, tensors["stock"], mask)
        total = 0.0
        for h in horizons:
            score, _ = spec.readout(outputs, h)
            total += float(((score - tensors[spec.target.columns(h)[0]]) ** 2).mean())
        return total

    base = mse(tensors["context"], tensors["context_mask"])
    importance = {}
    for index, (group, names) in enumerate(CONTEXT_FEATURE_GROUPS.items()):
        order = torch.randperm(len(tensors["context"]), generator=generator)
        context, mask = tensors["context"].clone(), tensors["context_mask"].clone()
        columns = [CONTEXT_FEATURES.index(n) for n in names]
        context[:, columns] = context[order][:, columns]
        mask[:, index] = mask[order, index]
        importance[group] = mse(context, mask) - base
    return importance


def input_gate_scales(model: nn.Module) -> dict[str, float]:
    """The dual tower's learned input gates, {feature: abs(scale)} largest first (the context
    tower's 25 features and 3 masks, then the stock tower's 62); empty without gates."""
    context_gate = getattr(model, "context_gate", None)
    stock_gate = getattr(model, "stock_gate", None)
    if context_gate is None or stock_gate is None:
        return {}
    names = [*CONTEXT_FEATURES, *MASK_COLUMNS, *STOCK_FEATURES]
    scales = torch.cat([context_gate.scale, stock_gate.scale]).detach().abs().tolist()
    return dict(sorted(zip(names, scales, strict=True), key=lambda item: -item[1]))
