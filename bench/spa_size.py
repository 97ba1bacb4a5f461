"""How often the verdict's tests say "better" when nothing is (issue 22): their size on null panels.

    python -m bench.spa_size                          # SPA, 1,500 panels per horizon
    python -m bench.spa_size --rho 0.3                # both predictors with skill 0.3
    python -m bench.spa_size --panels 1000 --headline # the headline's interval rule too

A panel is 330 business days x 7 tickers (the demo market's test period); the targets are
overlapping 7- and 30-day sums of daily shocks (5 and 21 business days), and the model and
its rival both score ``rho`` x target + noise that overlaps the same way, so neither is
better. Per horizon: how often Hansen's SPA p-value of the model against the rival falls
below 0.025 (a horizon's share of 5 % over two), ``arch``'s own and widened for few blocks
(``core.market.overfitting.few_blocks_pvalue``); with ``--headline``, how often the paired
interval's lower end is above 0 at 95 % and at 97.5 % (the headline's level for two
horizons), and how often the headline would say "beats" at either horizon (the horizons
get panels of their own; Bonferroni's bound holds whatever their dependence). About 0.1 s a
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
    from core.market.overfitting import superior_predictive_ability
    from core.market.uncertainty import (
        block_length,
        bootstrap_draws,
        date_stats,
        metrics_of_draws,
        paired_difference,
    )

    dates = pd.bdate_range("2021-01-01", periods=DATES)
    started = time.perf_counter()
    beats_somewhere = np.zeros(args.panels, bool)
    for horizon, days in HORIZONS.items():
        block = block_length(dates.to_numpy(), horizon)
        counts = {"arch": 0, "widened": 0, "low95": 0, "low975": 0}
        for panel in range(args.panels):
            rng = np.random.default_rng([panel, horizon])
            tables = null_panel(rng, dates, days, args.rho)
            skill = {n: daily_skill(t, "pearson").to_numpy() for n, t in tables.items()}
            spa = superior_predictive_ability(
                -skill["rival"], -skill["model"], block=block, seed=panel
            )
            counts["arch"] += spa["uncorrected"]["consistent"] < 0.025
            counts["widened"] += spa["consistent"] < 0.025
            if args.headline:
                draws = bootstrap_draws(dates.to_numpy(), horizon, seed=panel)
                drawn = {
                    n: metrics_of_draws(
                        date_stats(t, dates.to_numpy(), classes=2, constant=False), draws
                    )
                    for n, t in tables.items()
                }
                blocks = DATES / block
                for level, key in ((0.95, "low95"), (0.975, "low975")):
                    gain = paired_difference(
                        drawn["model"], drawn["rival"], "pearson", blocks, level=level
                    )
                    counts[key] += gain["low"] > 0
                    if level == 0.975:
                        beats_somewhere[panel] |= gain["low"] > 0
        shares = {k: v / args.panels for k, v in counts.items()}
        line = (
            f"{horizon}d, blocks of {block} ({DATES / block:.1f} blocks), rho {args.rho}: "
            f"SPA p < 0.025 in {shares['arch']:.1%} of {args.panels} null panels (arch's), "
            f"{shares['widened']:.1%} (widened)"
        )
        if args.headline:
            line += (
                f"; interval low > 0 in {shares['low95']:.1%} at 95 %, "
                f"{shares['low975']:.1%} at 97.5 %"
            )
        print(f"{line}  [{time.perf_counter() - started:.0f} s]", flush=True)
    if args.headline:
        print(
            f"headline 'beats' at either horizon (97.5 % each): {beats_somewhere.mean():.1%}"
            f" of {args.panels} panels"
        )


if __name__ == "__main__":
    main()
