"""Evaluate's trading section: each predictor traded the way its target's use trades it,
after costs, as a readable table (returns in percent, the Sharpe ratio with its interval) and
cumulative-return curves."""

import pandas as pd
import streamlit as st

from core.market.baselines import MARKET_BASELINES
from core.market.evaluation import Evaluation, finance_rows
from core.market.strategy import StrategyConfig, strategy_curve, strategy_figures
from pages import charts

TRADING_HEADERS = {
    "predictor": "predictor",
    "portfolio": "portfolio",
    "net_return": "net return",
    "gross_return": "gross return",
    "sharpe": "Sharpe (95% interval)",
    "max_drawdown": "max drawdown",
    "turnover": "daily turnover",
    "days": "days",
}
"""The strategy table's columns, in order, as a reader says them (percents for returns)."""


def trading_section(
    result: Evaluation, rows: pd.DataFrame, h: int, horizon: str, use: dict | None
) -> None:
    """Each predictor traded the way the target's use trades it (the day's order for a
    cross-section, each ticker's own score with too few tickers), after costs."""
    kinds = tuple(k for k in (use or {}).get("strategies", ("market_neutral", "long_only")))
    kinds = tuple(k for k in kinds if k != "topk") or ("market_neutral",)
    check = (use or {}).get("check") or kinds[0]
    cost = st.number_input(
        "Trading cost (basis points per unit of turnover)", 0.0, 1000.0, 10.0, step=5.0
    )
    strategy = StrategyConfig(cost_bps=float(cost))
    traded = {
        name: finance_rows(result.predictor(name)[f"score_{h}d"], rows, h)
        for name in result.predictors
    }
    trading = pd.DataFrame(
        [
            {"predictor": name, "portfolio": kind.replace("_", "-"), **figures[kind]}
            for name, frame in traded.items()
            for figures in [strategy_figures(frame, strategy, horizon_days=h, kinds=kinds)]
            for kind in kinds
        ]
    ).drop(columns=["annual_return"])
    described = {
        "market_neutral": "**market-neutral** ranks the day's tickers, long the top half and "
        "short the bottom half at equal gross (a constant predictor holds nothing: Sharpe 0)",
        "long_only": "**long-only** holds the tickers scored above the day's mean and is shown "
        "as the excess over holding every ticker equally",
        "time_series": "**time-series** holds each ticker long or short by its own score "
        "(too few tickers for a cross-section: this trades what the pooled correlation "
        "measures)",
    }
    st.caption(
        f"Trading each predictor's {horizon} scores, daily, after {cost:g} bp per unit of "
        "turnover: " + "; ".join(described[k] for k in kinds) + ". Returns are sums of daily "
        "returns; the Sharpe ratio is annualised, with its 95% block-bootstrap interval "
        "(none over fewer than 10 independent periods)."
    )
    sharpe = [
        f"{v:.2f} ({lo:.2f}..{hi:.2f})" if pd.notna(lo) and pd.notna(hi) else f"{v:.2f}"
        for v, lo, hi in zip(
            trading["sharpe"], trading["sharpe_low"], trading["sharpe_high"], strict=True
        )
    ]
    readable = trading.drop(columns=["sharpe", "sharpe_low", "sharpe_high"]).assign(sharpe=sharpe)
    readable = readable.rename(columns=TRADING_HEADERS)[
        [c for c in TRADING_HEADERS.values() if c in readable.rename(columns=TRADING_HEADERS)]
    ]
    percents = ["gross return", "net return", "daily turnover", "max drawdown"]
    st.dataframe(readable.style.format("{:.1%}", subset=percents, na_rep="-"), hide_index=True)
    curves = {
        name: strategy_curve(frame, check, strategy, horizon_days=h)
        for name, frame in traded.items()
        if not (name in MARKET_BASELINES and MARKET_BASELINES[name].constant)  # trades nothing
    }
    charts.show(st, charts.strategy_figure(curves), key="strategy")
