"""What an analyst does with each market target, and so what judges it.

A forecast is worth what its use earns, so each target declares one use and its headline
metric, the trading figures shown and the verdict's sanity check all measure that use:

- a return target on dates with a cross-section (at least ``MIN_CROSS_SECTION`` tickers):
  rank the day's tickers and hold the top against the bottom. Judged by the daily rank IC
  and the market-neutral long/short portfolio (long-only excess and Qlib's TopkDropout beside
  it) that trade exactly that order;
- a return target with fewer tickers: take each ticker long or short by its own score.
  Judged by the pooled correlation with the target and the per-ticker time-series portfolio
  that trades the same scores, never a cross-sectional portfolio beside a pooled metric;
- a co-movement (relevance) target: size a hedge of a position against the context factor.
  Judged by the variance that hedge removes (``hedge``: mean(rho^2) - MSE, see
  ``core.market.uncertainty``) against persistence, the trailing realised relevance, with no
  profit and loss table: a co-movement forecast says nothing about which stock goes up.

The verdict (``core.market.verdict``) asks ``use_conflicts`` whether a lead's own portfolio
contradicts it, and ``with_reasons`` adds why a pooled figure disagrees with the cross-section.

``use_for`` resolves the use from the target's kind and the primary metric declared (an
explicit 'pearson' on a wide universe gets the time-series use; an explicit 'rank_ic' on a
narrow one the cross-sectional use).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MIN_CROSS_SECTION = 20
"""Tickers on the median test date from which a return target is judged cross-sectionally
(rank IC, market-neutral portfolio). With fewer, a day's rank correlation takes a handful of
values (+1 or -1 with two tickers) and the pooled correlation with the target says more."""


@dataclass(frozen=True)
class Use:
    """One use of a target's forecast: what is done with it and what measures that."""

    name: str
    sentence: str
    """What an analyst does with the forecast, in one sentence (docs and the Evaluate page)."""
    primary: str
    """The headline metric that measures the use ('rank_ic', 'pearson' or 'hedge')."""
    strategies: tuple[str, ...]
    """The portfolios (``core.market.strategy`` kinds) that trade the forecast as the use
    does; empty where trading is not its use."""
    check: str | None
    """The portfolio whose Sharpe interval must not contradict a "beats" (None: no check)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CROSS_SECTION = Use(
    "cross-section",
    "Rank the day's tickers by the score and hold the top against the bottom: judged by the "
    "daily rank IC and the market-neutral long/short portfolio that trades that order.",
    "rank_ic",
    ("market_neutral", "long_only", "topk"),
    "market_neutral",
)
TIME_SERIES = Use(
    "time series",
    "Take each ticker long or short by its own score: judged by the pooled correlation with "
    "the target and a per-ticker long/short portfolio that trades the same scores.",
    "pearson",
    ("time_series",),
    "time_series",
)
HEDGE = Use(
    "hedge",
    "Size a hedge of each position against the market context by the forecast co-movement: "
    "judged by how much of the position's variance that hedge removes, against persistence "
    "(the co-movement of the window just ended); no profit and loss is its use.",
    "hedge",
    (),
    None,
)
USES = {use.name: use for use in (CROSS_SECTION, TIME_SERIES, HEDGE)}


def use_for(kind: str, primary: str) -> Use:
    """The use of a target of ``kind`` ('return' or 'co-movement') judged on ``primary``."""
    if kind == "co-movement":
        return HEDGE
    return CROSS_SECTION if primary == "rank_ic" else TIME_SERIES


def default_primary(kind: str, tickers: int) -> tuple[str, str]:
    """(metric, reason) of 'auto' for a target of ``kind`` on ``tickers`` per test date."""
    if kind == "co-movement":
        return "hedge", "a co-movement forecast is used to size hedges"
    if tickers >= MIN_CROSS_SECTION:
        return "rank_ic", f"{tickers} tickers per test date, at least {MIN_CROSS_SECTION}"
    return "pearson", (
        f"{tickers} tickers per test date, fewer than {MIN_CROSS_SECTION} for a cross-section"
    )


def with_reasons(
    verdict: dict[str, Any], primary: dict[str, Any], sections: dict[str, Any]
) -> dict[str, Any]:
    """The verdict with why a figure the user may have seen elsewhere disagrees: a model
    whose pooled correlation with the target leads the baselines at a horizon where its
    rank IC (the cross-section, what is traded) does not gets the dates' common moves
    right and the order of tickers on a date wrong."""
    if primary["metric"] != "rank_ic" or verdict["verdict"] in ("beats", "collapsed"):
        return verdict
    reasons = []
    for key, section in sections.items():
        pooled = next((c for c in section["comparisons"] if c["metric"] == "pearson"), None)
        ranked = section.get("primary")
        if pooled and ranked and pooled["verdict"] == "beats" and ranked["verdict"] != "beats":
            reasons.append(
                f"at {key.removesuffix('d')} days its pooled correlation with the target leads "
                f"{pooled['baseline']} ({pooled['difference']:+.3f}) while its rank IC does not "
                f"({ranked['difference']:+.3f}): it gets the dates' common moves right and the "
                "order of tickers on a date, which is what a portfolio trades, wrong"
            )
    if not reasons:
        return verdict
    return {**verdict, "sentence": verdict["sentence"] + ". Why: " + "; ".join(reasons)}


STRATEGY_NAMES = {
    "market_neutral": "market-neutral long/short portfolio",
    "time_series": "per-ticker long/short portfolio",
}


def use_conflicts(primary: dict[str, Any], model_report: dict[str, Any]) -> dict[str, str]:
    """Per horizon, why the use's own figure contradicts a lead: the portfolio that trades
    the forecast as the use does (``primary['use']['check']``) has a Sharpe interval wholly
    below 0. Empty where the use trades nothing (a hedge) or no interval is below 0."""
    check = (primary.get("use") or {}).get("check")
    found = {}
    for horizon, section in model_report.items() if check else ():
        figures = section.get("finance", {}).get(check)
        if figures and np.isfinite(figures["sharpe_high"]) and figures["sharpe_high"] < 0:
            found[horizon] = (
                f"the {STRATEGY_NAMES.get(check, check)} that trades it loses at "
                f"{horizon.removesuffix('d')} days: Sharpe {figures['sharpe']:+.2f} (95% "
                f"interval {figures['sharpe_low']:+.2f}..{figures['sharpe_high']:+.2f}), net "
                f"return {figures['net_return']:+.1%}"
            )
    return found
