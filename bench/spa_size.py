"""How often the verdict's tests say "better" when nothing is (issue 22): their size on null panels.

    python -m bench.spa_size                          # SPA, 1,500 panels per horizon
    python -m bench.spa_size --rho 0.3                # both predictors with skill 0.3
    python -m bench.spa_size --panels 1000 --headline # the headline's interval rule too

A panel is 330 business days x 7 tickers (the demo market's test period); the targets are
overlapping 7- and 30-day sums of daily shocks (5 and 21 business days), and the model and
its rival both score ``rho`` x target + noise that overlaps the same way, so neither is
better. Per horizon: how often Hansen's SPA p-value of the model against the rival falls
below 0.025 (a horizon's share of 5 % over two): ``arch``'s own, widened for few blocks
alone, and widened for the variance blocks miss too, as shipped
(``core.market.overfitting.few_blocks_pvalue``); with ``--headline``, how often the paired
interval's lower end is above 0 at 95 % (the lower end is the headline's one-sided 97.5 %
bound for two horizons since 2026-12-06) and at 97.5 % (the rule before), each with and
without the overlap widening, and how often each rule would say "beats" at either horizon
(the horizons get panels of their own; Bonferroni's bound holds whatever their
dependence). About 0.1 s a
panel and horizon for SPA, 0.4 s with ``--headline``. Figures in docs/models.md ("How often
the tests are wrong").
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

DATES, TICKERS = 330, 7
HORIZONS = {7: 5, 30: 21}
"""Label horizon in calendar days: the business days its window spans."""


def _overlapping(rng: np.random.Generator, days: int) -> np.ndarray:
    """(DATES, TICKERS) sums of the next ``days`` unit shocks, scaled to variance 1."""
    walk = np.cumsum(rng.normal(size=(DATES + days, TICKERS)), axis=0)
    return (walk[days:] - walk[:-days]) / np.sqrt(days)


def null_panel(rng: np.random.Generator, dates: pd.DatetimeIndex, days: int, rho: float):
    """The model's and the rival's tables (date, score, target, forward_return, classes)."""
    target = _overlapping(rng, days)
    tables = {}
    for name in ("model", "rival"):
        score = rho * target + np.sqrt(1 - rho**2) * _overlapping(rng, days)
        frame = pd.DataFrame(
            {
                "date": np.repeat(dates, TICKERS),
                "score": score.ravel(),
                "target": target.ravel(),
                "forward_return": target.ravel(),
            }
        )
        frame["predicted"] = (frame["score"] > 0).astype(int)
        frame["actual"] = (frame["target"] > 0).astype(int)
        tables[name] = frame
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rho", type=float, default=0.0, help="both predictors' skill")
    parser.add_argument("--panels", type=int, default=1500, help="null panels per horizon")
    parser.add_argument("--headline", action="store_true", help="the interval rule too")
    args = parser.parse_args()

    import core  # noqa: F401  (thread and OpenMP settings)
    from core.market.metrics import daily_skill
    from core.market.overfitting import few_blocks_pvalue, superior_predictive_ability
    from core.market.uncertainty import (
        block_length,
        bootstrap_draws,
        date_stats,
        metrics_of_draws,
        overlap_shortfall,
        paired_difference,
    )

    dates = pd.bdate_range("2021-01-01", periods=DATES)
    started = time.perf_counter()
    beats = {"before": np.zeros(args.panels, bool), "now": np.zeros(args.panels, bool)}
    for horizon, days in HORIZONS.items():
        block = block_length(dates.to_numpy(), horizon)
        blocks = DATES / block
        shortfall = overlap_shortfall(dates.to_numpy(), horizon)
        counts = dict.fromkeys(("arch", "t", "now", "low95_t", "low975_t", "low95", "low975"), 0)
        for panel in range(args.panels):
            rng = np.random.default_rng([panel, horizon])
            tables = null_panel(rng, dates, days, args.rho)
            skill = {n: daily_skill(t, "pearson").to_numpy() for n, t in tables.items()}
            spa = superior_predictive_ability(
                -skill["rival"], -skill["model"], block=block, shortfall=shortfall, seed=panel
            )
            raw = spa["uncorrected"]["consistent"]
            counts["arch"] += raw < 0.025
            counts["t"] += few_blocks_pvalue(raw, blocks) < 0.025
            counts["now"] += spa["consistent"] < 0.025
            if args.headline:
                draws = bootstrap_draws(dates.to_numpy(), horizon, seed=panel)
                drawn = {
                    n: metrics_of_draws(
                        date_stats(t, dates.to_numpy(), classes=2, constant=False), draws
                    )
                    for n, t in tables.items()
                }
                for level, suffix in ((0.95, "95"), (0.975, "975")):
                    for missed, tag in ((0.0, "_t"), (shortfall, "")):
                        gain = paired_difference(
                            drawn["model"],
                            drawn["rival"],
                            "pearson",
                            blocks,
                            level,
                            shortfall=missed,
                        )
                        counts[f"low{suffix}{tag}"] += gain["low"] > 0
                        if (suffix, tag) == ("975", "_t"):
                            beats["before"][panel] |= gain["low"] > 0
                        if (suffix, tag) == ("95", ""):
                            beats["now"][panel] |= gain["low"] > 0
        shares = {k: v / args.panels for k, v in counts.items()}
        line = (
            f"{horizon}d, blocks of {block} ({blocks:.1f} blocks, shortfall {shortfall:.3f}), "
            f"rho {args.rho}: SPA p < 0.025 in {shares['arch']:.1%} of {args.panels} null "
            f"panels (arch's), {shares['t']:.1%} (t only), {shares['now']:.1%} (t and overlap)"
        )
        if args.headline:
            line += (
                f"; interval low > 0, t only: {shares['low95_t']:.1%} at 95 %, "
                f"{shares['low975_t']:.1%} at 97.5 %; t and overlap: {shares['low95']:.1%} at "
                f"95 %, {shares['low975']:.1%} at 97.5 %"
            )
        print(f"{line}  [{time.perf_counter() - started:.0f} s]", flush=True)
    if args.headline:
        print(
            f"'beats' at either horizon: {beats['before'].mean():.1%} of {args.panels} panels "
            f"at 97.5 % each, t only (the rule until 2026-12-06); {beats['now'].mean():.1%} "
            "at 95 % each, t and overlap (the rule since)"
        )


if __name__ == "__main__":
    main()
