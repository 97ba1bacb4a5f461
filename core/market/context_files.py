"""Reading the context files a market import may bring beside its prices: news headlines
(scored with VADER), policy events and macro series, each validated in full (problems name
file, line and column, ``core.user_tables``); and which macro series an import joins (the
file's, or the series bundled with the ``arch`` package)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.market.bundled import bundled_macro_series, bundled_macro_source
from core.market.context import (
    MACRO_SERIES,
    POLICY_STANCE,
    SECTORS,
    macro_observed_span,
    score_headlines,
    series_spans,
)
from core.table_files import ReadOptions
from core.user_tables import read_table


def read_headlines(path: Path, options: ReadOptions | None = None) -> pd.DataFrame:
    """Validated headlines (date, ticker, headline, source) with a VADER ``score``."""
    table = read_table(path, options or ReadOptions())
    table.require(["date", "ticker", "headline"])
    table.raise_if_any()
    frame = pd.DataFrame(
        {
            "date": table.dates("date"),
            "ticker": table.text("ticker"),
            "headline": table.text("headline"),
        }
    )
    if "source" in table.frame.columns:
        frame["source"] = table.frame["source"].replace("", "unknown")
    table.raise_if_any()
    return frame.assign(score=score_headlines(frame["headline"]))


def read_policy_events(path: Path, options: ReadOptions | None = None) -> pd.DataFrame:
    """Validated policy events (date, type, urgency, sector[, stance])."""
    table = read_table(path, options or ReadOptions())
    table.require(["date", "type", "urgency", "sector"])
    table.raise_if_any()
    frame = pd.DataFrame(
        {
            "date": table.dates("date"),
            "type": table.choice("type", list(POLICY_STANCE)),
            "urgency": table.numbers("urgency"),
            "sector": table.choice("sector", [*SECTORS, "all"]),
        }
    )
    out_of_range = ~frame["urgency"].isin([1, 2, 3, 4, 5]) & np.isfinite(frame["urgency"])
    table.flag(
        out_of_range,
        "urgency",
        lambda i: f"{frame['urgency'].iloc[i]:g} is not an integer from 1 to 5",
    )
    if "stance" in table.frame.columns:
        frame["stance"] = table.numbers("stance")
        table.flag(
            ~frame["stance"].isin([-1, 0, 1]) & np.isfinite(frame["stance"]),
            "stance",
            lambda _: "stance must be -1, 0 or 1",
        )
    table.raise_if_any()
    return frame


def read_macro_series(path: Path, options: ReadOptions | None = None) -> pd.DataFrame:
    """Validated macro observations (date, series, value[, released])."""
    table = read_table(path, options or ReadOptions())
    table.require(["date", "series", "value"])
    table.raise_if_any()
    frame = pd.DataFrame(
        {
            "date": table.dates("date"),
            "series": table.choice("series", list(MACRO_SERIES)),
            "value": table.numbers("value"),
        }
    )
    positive = frame["series"].isin(["cpi", "oil", "vix"]) & (frame["value"] <= 0)
    table.flag(positive, "value", lambda i: f"{frame['series'].iloc[i]} must be positive")
    if "released" in table.frame.columns:
        frame["released"] = table.dates("released")
        table.flag(
            frame["released"] < frame["date"],
            "released",
            lambda _: "released before the date it describes",
        )
    duplicated = frame.duplicated(["date", "series"], keep=False)
    table.flag(duplicated, "date", lambda _: "duplicate (date, series)")
    table.raise_if_any()
    return frame


def macro_context(
    series: pd.DataFrame | None,
    macro: Path | None,
    prices: pd.DataFrame,
    bundled: bool,
    warnings: list[str],
) -> tuple[pd.DataFrame | None, dict[str, object], list[str]]:
    """The macro series an import uses, its recipe entry and notes; warns about a macro file
    that lacks a series (the group needs all five)."""
    if series is not None:
        name = Path(macro).name
        missing = [n for n in MACRO_SERIES if n not in set(series["series"])]
        if missing:
            warnings.append(
                f"{name}: no {', '.join(missing)} series; the macro group needs all of "
                f"{', '.join(MACRO_SERIES)}, so mask_macro stays 0"
            )
        source = {"source": "file", "name": name, "series": series_spans(series)}
        note = f"Macro context: your file {name}; the bundled macro series are not joined."
        return series, source, [note]
    if not bundled:
        return None, {"source": "none"}, ["Macro context: none (the bundled series are off)."]
    series = bundled_macro_series()
    source = bundled_macro_source()
    span = macro_observed_span(series)
    dates = prices["date"].drop_duplicates()
    covered = dates.between(*span).mean()
    note = (
        f"Macro context: no macro file, so the macro series bundled with {source['package']} "
        f"are joined as of each date; the group is complete from {span[0].date()} to "
        f"{span[1].date()}, which covers {covered:.0%} of your price dates "
        "(mask_macro 0 elsewhere)."
    )
    return series, source, [note]
