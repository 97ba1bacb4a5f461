"""Trading figures (core.market.strategy) by hand: market-neutral weights, the long-only
excess, costs, TopkDropout, and what a constant predictor earns (nothing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import ConfigError
from core.market.strategy import (
    StrategyConfig,
    market_neutral_weights,
    sharpe,
    strategy_curve,
    strategy_figures,
    topk_dropout_weights,
)


def _frame(scores: np.ndarray, returns: np.ndarray) -> pd.DataFrame:
    days, tickers = scores.shape
    return pd.DataFrame(
        {
            "date": np.repeat(pd.bdate_range("2021-01-01", periods=days), tickers),
            "ticker": np.tile([f"T{i}" for i in range(tickers)], days),
            "score": scores.ravel(),
            "next_return": returns.ravel(),
        }
    )


def _random(seed: int = 0, days: int = 120, tickers: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0005, 0.01, (days, tickers))
    return _frame(rng.normal(size=(days, tickers)), returns)


def test_market_neutral_returns_turnover_and_costs_by_hand() -> None:
    scores = np.array([[3.0, 1.0, 2.0], [1.0, 2.0, 3.0]])
    frame = _frame(scores, np.array([[0.02, -0.01, 0.0], [0.01, 0.03, -0.02]]))
    weights = market_neutral_weights(frame.pivot(index="date", columns="ticker", values="score"))
    assert weights.iloc[0].tolist() == [0.5, -0.5, 0.0], "ranks 3,1,2 demeaned, gross 1"
    curve = strategy_curve(frame, "market_neutral", StrategyConfig(cost_bps=10))
    assert curve["gross"].tolist() == pytest.approx([0.5 * 0.02 + 0.5 * 0.01, -0.5 * 0.01 - 0.01])
    assert curve["turnover"].tolist() == pytest.approx([1.0, 2.0]), "from cash, then a flip"
    assert curve["return"].tolist() == pytest.approx(curve["gross"] - 0.001 * curve["turnover"])


def test_a_multi_day_forecast_is_held_in_overlapping_tranches() -> None:
    """Issue 36: held for its horizon (7 calendar days span 5 business dates), the book is the
    mean of the last five days' target portfolios; 'daily' rebuilds it every day."""
    frame = _random(seed=3, days=40, tickers=5)
    scores = frame.pivot(index="date", columns="ticker", values="score")
    targets = market_neutral_weights(scores)
    held = strategy_curve(frame, "market_neutral", StrategyConfig(), horizon_days=7)
    daily = strategy_curve(frame, "market_neutral", StrategyConfig(holding="daily"), horizon_days=7)
    book = targets.rolling(5, min_periods=1).mean()
    returns = frame.pivot(index="date", columns="ticker", values="next_return")
    assert held["gross"].to_numpy() == pytest.approx((book * returns).sum(axis=1).to_numpy())
    assert daily["gross"].to_numpy() == pytest.approx((targets * returns).sum(axis=1).to_numpy())
    assert held["turnover"].iloc[5:].mean() < 0.5 * daily["turnover"].iloc[5:].mean()


def test_a_constant_predictor_earns_exactly_nothing_market_neutral_or_in_excess() -> None:
    frame = _random().assign(score=0.3)
    figures = strategy_figures(frame, StrategyConfig(), horizon_days=7)
    for kind in ("market_neutral", "long_only"):
        assert figures[kind]["sharpe"] == 0.0 and figures[kind]["net_return"] == 0.0, kind
        assert figures[kind]["turnover"] == 0.0 and figures[kind]["max_drawdown"] == 0.0, kind


def test_an_always_up_predictor_no_longer_earns_the_markets_rise() -> None:
    """The old sign(score) long/short was long everything: the market's drift as 'skill'."""
    rng = np.random.default_rng(1)
    days, tickers = 250, 5
    returns = rng.normal(0.002, 0.01, (days, tickers))  # a strong bull market
    frame = _frame(np.ones((days, tickers)), returns)
    assert strategy_figures(frame, StrategyConfig())["market_neutral"]["sharpe"] == 0.0
    noisy = frame.assign(score=1 + rng.normal(0, 0.01, len(frame)))  # up, with noise
    figures = strategy_figures(noisy, StrategyConfig(cost_bps=0))
    assert abs(figures["market_neutral"]["sharpe"]) < 2.5
    assert sharpe(returns.mean(axis=1)) > 2.5, "what sign(score) used to report"


def test_doubling_the_cost_lowers_net_return_by_exactly_turnover_times_the_added_cost() -> None:
    frame = _random(seed=4)
    for kind in ("market_neutral", "long_only", "topk"):
        config = StrategyConfig(cost_bps=10, topk=2, n_drop=1)
        doubled = StrategyConfig(cost_bps=20, topk=2, n_drop=1)
        once, twice = strategy_curve(frame, kind, config), strategy_curve(frame, kind, doubled)
        traded = once["turnover"].sum()
        assert traded > 0, kind
        assert twice["return"].sum() == pytest.approx(
            once["return"].sum() - traded * 0.001, abs=1e-12
        ), kind
        assert (twice["gross"] == once["gross"]).all(), "gross returns do not pay costs"


def test_long_only_is_the_excess_over_equal_weight_of_the_same_tickers() -> None:
    frame = _frame(np.array([[2.0, 1.0, 0.0]]), np.array([[0.03, 0.0, -0.03]]))
    curve = strategy_curve(frame, "long_only", StrategyConfig(cost_bps=0))
    assert curve["gross"].iloc[0] == pytest.approx(0.03 - 0.0), "only T0 is above the mean"


def test_topk_dropout_swaps_at_most_n_drop_a_day_and_holds_k() -> None:
    frame = _random(seed=2, days=40, tickers=8)
    scores = frame.pivot(index="date", columns="ticker", values="score")
    weights = topk_dropout_weights(scores, topk=3, n_drop=1)
    held = weights > 0
    assert (held.sum(axis=1) == 3).all()
    assert (held.astype(int).diff().abs().sum(axis=1).iloc[1:] <= 2).all(), "one out, one in"
    first = scores.iloc[0].nlargest(3).index
    assert set(held.columns[held.iloc[0]]) == set(first), "it starts with the top 3"


def test_sharpe_intervals_contain_the_sharpe_and_the_config_is_checked() -> None:
    figures = strategy_figures(_random(seed=3, days=300), StrategyConfig(), horizon_days=7)
    neutral = figures["market_neutral"]
    assert neutral["sharpe_low"] <= neutral["sharpe"] <= neutral["sharpe_high"]
    assert figures["cost_bps"] == 10.0 and "topk" not in figures
    with pytest.raises(ConfigError, match="cost_bps"):
        StrategyConfig(cost_bps=-1)
    with pytest.raises(ConfigError, match="weighting"):
        StrategyConfig(weighting="sign")
