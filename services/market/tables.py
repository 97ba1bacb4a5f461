"""The market metrics table as a reader takes it in: every interval in its figure's cell,
``+0.031 (+0.004..+0.058)``, shares in percent, the use's headline columns first and the rest
apart, so nothing a decision rests on hides behind a horizontal scroll."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

COLUMN_OF = {"pearson": "corr", "rank_ic": "rank IC", "hedge": "hedge"}
"""A verdict's primary metric -> its column in ``core.market.evaluation.metrics_table``."""
PERCENT = (
    "direction acc",
    "accuracy",
    "hit rate",
    "net return",
    "turnover",
    "max drawdown",
    "long-only excess",
)
"""Shares, shown in percent."""
HEADLINE = ("rank IC", "corr", "hedge", "Sharpe", "net return", "direction acc", "macro F1")
"""After the primary metric, the figures a decision reads first (those the table has)."""


def _interval_of(column: str, columns: pd.Index) -> str | None:
    """The column holding ``column``'s 95 % interval as text ("lo..hi"), if any."""
    name = "Sharpe 95%" if column.startswith("Sharpe (") else f"{column} 95%"
    return name if name in columns else None


def _cell(value: Any, interval: Any, percent: bool) -> str:
    if isinstance(value, str):
        return value
    if value is None or not np.isfinite(value):
        return "-"
    shown = f"{value:.1%}" if percent else f"{value:+.3f}"
    if isinstance(interval, str) and ".." in interval:
        return f"{shown} ({interval})"
    return shown


def readable_metrics(table: pd.DataFrame, primary: str | None) -> tuple[pd.DataFrame, list[str]]:
    """``table`` (one row per predictor) as text cells with its intervals folded in, the
    primary metric's column first, then the headline ones; returns it with the names of
    the headline columns (predictor included), so a page can show those and keep the rest
    one click away."""
    columns = [c for c in table.columns if not c.endswith(" 95%")]
    cells = pd.DataFrame(index=table.index)
    for column in columns:
        interval = _interval_of(column, table.columns)
        percent = column in PERCENT
        cells[column] = [
            _cell(value, table.at[row, interval] if interval else None, percent)
            for row, value in table[column].items()
        ]
    first = COLUMN_OF.get(primary or "")
    wanted = [first, *HEADLINE] if first else list(HEADLINE)
    headline = ["predictor"]
    for name in wanted:
        found = next((c for c in columns if c == name or c.startswith(f"{name} (")), None)
        if found and found not in headline:
            headline.append(found)
    ordered = headline + [c for c in columns if c not in headline]
    return cells[ordered], headline
