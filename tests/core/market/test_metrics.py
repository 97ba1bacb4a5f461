"""Metrics against scikit-learn, scipy and hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as sk

from core.market.metrics import (
    classification_metrics,
    daily_skill,
    hit_rate,
    information_coefficients,
    regression_metrics,
)
from core.market.strategy import StrategyConfig, strategy_curve, strategy_figures

rng = np.random.default_rng(0)


def test_regression_metrics_match_sklearn_and_scipy() -> None:
    y, p = rng.normal(size=200), rng.normal(size=200)
    got = regression_metrics(p, y)
    assert got["mse"] == pytest.approx(sk.mean_squared_error(y, p))
    assert got["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, p)))
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, p))
    assert got["pearson"] == pytest.approx(np.corrcoef(p, y)[0, 1])
    assert got["spearman"] == pytest.approx(stats.spearmanr(p, y).statistic)
    assert regression_metrics(np.zeros(5), np.arange(5.0))["pearson"] == 0.0


def test_classification_metrics_match_sklearn() -> None:
    y, p = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    got = classification_metrics(p, y, ("down", "neutral", "up"))
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, p))
    assert got["macro_f1"] == pytest.approx(sk.f1_score(y, p, average="macro"))
    precision = sk.precision_score(y, p, average=None)
    recall = sk.recall_score(y, p, average=None)
    for i, name in enumerate(("down", "neutral", "up")):
        assert got["per_class"][name]["precision"] == pytest.approx(precision[i])
        assert got["per_class"][name]["recall"] == pytest.approx(recall[i])
    assert got["confusion"] == sk.confusion_matrix(y, p).tolist()


def test_information_coefficient_and_hit_rate_by_hand() -> None:
    frame = pd.DataFrame(
        {
            "date": ["d1"] * 3 + ["d2"] * 3,
            "score": [1.0, 2.0, 3.0, 3.0, 2.0, 1.0],
            "forward_return": [0.1, 0.2, 0.4, 0.1, 0.2, 0.3],
        }
    )
    got = information_coefficients(frame)
    day1 = np.corrcoef([1, 2, 3], [0.1, 0.2, 0.4])[0, 1]
    assert got["ic"] == pytest.approx((day1 - 1.0) / 2)
    assert got["rank_ic"] == pytest.approx(0.0)
    assert hit_rate(np.array([1.0, -1.0, 2.0]), np.array([0.5, 0.5, 0.1])) == pytest.approx(2 / 3)


def test_strategy_returns_costs_and_drawdown_by_hand() -> None:
    """Issue 22: the long/short is market-neutral (A long, B short at 0.5 each), not the
    sign of each score; the long-only figure is the excess over holding A and B equally."""
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2021-01-04"] * 2 + ["2021-01-05"] * 2),
            "ticker": ["A", "B", "A", "B"],
            "score": [1.0, -1.0, 1.0, 1.0],
            "next_return": [0.02, -0.01, -0.03, 0.01],
        }
    )
    got = strategy_figures(frame, StrategyConfig(cost_bps=10))["market_neutral"]
    day1 = 0.5 * 0.02 + 0.5 * 0.01 - 0.001 * 1.0  # both legs opened from cash
    day2 = 0.0 - 0.001 * 1.0  # equal scores: both legs closed, nothing held
    assert got["net_return"] == pytest.approx(day1 + day2)
    assert got["gross_return"] == pytest.approx(0.015)
    assert got["max_drawdown"] == pytest.approx(day2)
    assert got["turnover"] == pytest.approx(1.0)
    flat = strategy_curve(frame, "long_only", StrategyConfig(cost_bps=0))
    excess = [0.02 - (0.02 - 0.01) / 2, 0.0]  # A alone against A and B; then both held
    assert flat["return"].tolist() == pytest.approx(excess)


def test_the_daily_skill_series_averages_to_the_primary_metric() -> None:
    frame = pd.DataFrame(
        {
            "date": np.repeat(pd.bdate_range("2021-01-01", periods=40), [3, 4] * 20),
            "score": rng.normal(size=140),
        }
    )
    frame["target"] = 0.5 * frame["score"] + rng.normal(size=140)
    frame["forward_return"] = frame["target"]
    pooled = np.corrcoef(frame["score"], frame["target"])[0, 1]
    assert daily_skill(frame, "pearson").mean() == pytest.approx(pooled, rel=1e-12)
    ic = information_coefficients(frame.assign(ticker=0))["rank_ic"]
    assert daily_skill(frame, "rank_ic").mean() == pytest.approx(ic, rel=1e-12)
    assert (daily_skill(frame, "pearson", constant=True) == 0).all()


def test_a_collapsed_prediction_is_flagged_constant_with_its_raw_correlation() -> None:
    target = rng.normal(size=500)
    collapsed = 0.3 + 1e-4 * target + 1e-4 * rng.normal(size=500)
    got = regression_metrics(collapsed, target)
    assert got["constant"] == 1.0 and got["pearson"] == 0.0
    assert got["raw_pearson"] > 0.5, "the noise's correlation stays visible"
    assert got["skill"] == pytest.approx(1 - got["mse"] / target.var())
    assert regression_metrics(target + 0.1, target)["constant"] == 0.0


def test_divergent_predictions_and_ensemble_by_hand() -> None:
    from core.market.evaluation import divergent_predictions, ensemble_predictions

    frame = pd.DataFrame(
        {
            "date": [1, 2, 3],
            "ticker": "A",
            "score_7d": [0.9, 0.1, -0.5],
            "score_30d": [-0.9, 0.1, -0.4],
        }
    )
    assert divergent_predictions(frame, top=1)["date"].tolist() == [1]
    a = pd.DataFrame(
        {
            "date": [1, 2],
            "ticker": "A",
            **{f"score_{h}d": [1.0, -1.0] for h in (7, 30)},
            **{f"prob{i}_{h}d": [p, 1 - p] for h in (7, 30) for i, p in ((0, 0.2), (1, 0.8))},
        }
    )
    b = a.assign(**{f"score_{h}d": [0.0, 0.0] for h in (7, 30)}).iloc[[1]]
    combined = ensemble_predictions([a, b])
    assert combined["date"].tolist() == [2], "only the rows both members scored"
    assert combined["score_7d"].tolist() == [-0.5]


def test_group_importance_finds_the_only_group_a_model_reads() -> None:
    import torch

    from core.batches import TensorBatches
    from core.market.evaluation import context_group_importance
    from core.market.models import model_spec

    class NewsOnly(torch.nn.Module):
        def forward(self, context, stock, mask):
            score = torch.tanh(context[:, 0])  # news_sentiment_mean only
            logits = torch.zeros(len(context), 3)
            return {f"score_{h}d": score for h in (7, 30)} | {
                f"direction_logits_{h}d": logits for h in (7, 30)
            }

    n = 400
    context = torch.randn(n, 25)
    tensors = {
        "context": context,
        "stock": torch.randn(n, 62),
        "context_mask": torch.ones(n, 3),
        **{f"relevance_{h}d": torch.tanh(context[:, 0]) for h in (7, 30)},
    }
    loader = TensorBatches(
        tensors,
        meta=pd.DataFrame({"date": range(n), "ticker": "A"}),
        batch_size=64,
        shuffle=False,
        seed=0,
        standardizer=None,
    )
    importance = context_group_importance(
        model_spec("dual_tower"), NewsOnly(), loader, horizons=(7, 30)
    )
    assert importance["news"] > 0.1
    assert importance["policy"] == 0.0 and importance["macro"] == 0.0


def test_noise_correlation_flags_a_leak_and_only_a_leak() -> None:
    from core.market.evaluation import noise_correlation

    rng = np.random.default_rng(0)
    features = rng.normal(size=(20_000, 3))
    oracle = np.tanh(features @ [0.6, -0.3, 0.2])
    label = 0.8 * oracle + 0.05 + rng.normal(scale=0.4, size=len(oracle))  # attenuated, noisy
    noise = label - np.polyval(np.polyfit(oracle, label, 1), oracle)
    clean = features @ [0.5, -0.2, 0.4] + features[:, 0] ** 2  # any function of the features
    leaky = clean + 0.5 * label
    assert abs(noise_correlation(clean, label, oracle)) < 0.02
    assert noise_correlation(leaky, label, oracle) > 0.1
    assert noise_correlation(leaky, label, oracle) == pytest.approx(np.corrcoef(leaky, noise)[0, 1])
    assert noise_correlation(np.full(len(label), 0.3), label, oracle) == 0.0
