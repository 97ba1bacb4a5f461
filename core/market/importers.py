"""Reading what users bring: OHLCV prices, news headlines, policy events and macro series.

Every file is validated in full before anything is built or stored. Each problem names the
file, the line (CSV, counting the header as line 1) or row (Parquet), and the column; the
problems of all files are raised together as ``ImportFailed``, which describes the first
``MAX_PROBLEMS_PER_FILE`` of each file and counts the rest. Problems that do not make the data
wrong (unsorted rows, long gaps, tickers without prices) are returned as warnings instead.

Validation refuses what the dataset build cannot use, so a file that passes builds: prices
within ``MIN_PRICE`` .. ``MAX_PRICE``, volumes within 0 .. ``MAX_VOLUME`` (inside those bounds
every ratio the features take, high / low and day-over-day included, stays finite), dates
within ``FIRST_DATE`` .. ``LAST_DATE`` (the build's nanosecond clock ends in 1677 and 2262),
and tickers with at least one row past the warm-up on which every stock feature is defined.

Formats:
- prices: CSV or Parquet, long (date, ticker, open, high, low, close, volume[, adj_close])
  or one file per ticker (the file name is the ticker); ``mapping`` renames source columns;
- news: CSV (date, ticker, headline[, source]), scored with VADER;
- policy: CSV (date, type, urgency 1-5, sector[, stance]);
- macro: CSV (date, series, value[, released]).

Without a macro file, the macro series bundled with the ``arch`` package are joined as the
macro context (as of each date, with their release lags and staleness limits): rows whose
dates they cover get ``mask_macro`` 1, the others 0. A macro file replaces them entirely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.files import file_sha256
from core.import_problems import ImportFailed, Problem
from core.market.bundled import bundled_macro_series, bundled_macro_source
from core.market.config import DEFAULT_HORIZONS
from core.market.context import (
    MACRO_SERIES,
    POLICY_STANCE,
    SECTORS,
    macro_observed_span,
    score_headlines,
    series_spans,
)
from core.market.features import PRICE_COLUMNS, STOCK_FEATURES, WARMUP_DAYS, ticker_features
from core.market.sources import MarketData
from core.table_files import ReadOptions, return_freed_arrow_memory
from core.user_tables import ProblemLog, read_table

MAX_GAP_WARNINGS = 10
"""Date-gap warnings listed per ticker; beyond it they are counted."""

MIN_PRICE, MAX_PRICE = 1e-6, 1e12
"""Accepted prices. Within them no feature overflows or underflows, whatever the ratios."""
MAX_VOLUME = 1e15
"""Largest accepted volume: price x volume and volume sums over the history stay finite."""

# Rows of history a stock feature reads before its own date (the 252-day windows and the
# 12-month momentum), with room to spare.
_FEATURE_LOOKBACK_ROWS = 2 * WARMUP_DAYS
_FEATURE_CHECK_ROWS = 20_000


@dataclass(frozen=True)
class ImportOptions(ReadOptions):
    """Limits applied to every market import."""

    max_gap_days: int = 10
    """A gap between consecutive dates of a ticker longer than this many days is a warning."""
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    """Label horizons; a ticker needs the feature warm-up plus the longest horizon in rows."""
    appending: bool = False
    """The rows extend a stored dataset (``trendlab data update``): its history supplies the
    warm-up, so a ticker may have any number of rows."""

    @property
    def min_rows(self) -> int:
        return 1 if self.appending else WARMUP_DAYS + max(self.horizons)


def read_prices(
    paths: Sequence[Path],
    *,
    mapping: dict[str, str] | None = None,
    options: ImportOptions | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Validated long OHLCV (date, ticker, open, high, low, close, volume) and warnings.

    A file without a ticker column is one ticker's history, named after the file.
    With an ``adj_close`` column, open/high/low/close are scaled by adj_close / close so
    splits and dividends do not show up as jumps.
    """
    options = options or ImportOptions()
    frames, warnings = [], []
    log = ProblemLog()
    for path in paths:
        try:
            frame = _read_price_file(Path(path), mapping, options)
        except ImportFailed as failure:  # go on, so one run reports every file's problems
            log.extend(failure)
        else:
            frames.append(frame)
    return_freed_arrow_memory()  # the files' string cells are gone; only numbers remain
    log.raise_if_any()
    prices = pd.concat(frames, ignore_index=True)
    across = prices.duplicated(["date", "ticker"], keep=False)
    if across.any():
        first = prices[across].iloc[0]
        raise ImportFailed(
            [
                Problem(
                    first["_file"],
                    f"ticker {first['ticker']} on {first['date'].date()} "
                    "appears in more than one file",
                )
            ]
        )
    for (ticker, file), rows in prices.groupby(["ticker", "_file"], sort=True):
        if not rows["date"].is_monotonic_increasing:
            warnings.append(f"{file}: rows of {ticker} were not in date order; sorted them")
        warnings += _gap_warnings(file, ticker, rows["date"].sort_values(), options.max_gap_days)
        if len(rows) < options.min_rows:
            log.add(
                Problem(
                    file,
                    f"ticker {ticker} has {len(rows)} rows; at least "
                    f"{options.min_rows} are needed ({WARMUP_DAYS} days of feature warm-up "
                    f"+ the {max(options.horizons)}-day label horizon)",
                    column="ticker",
                )
            )
    log.raise_if_any()
    prices = prices.sort_values(["ticker", "date"], kind="stable", ignore_index=True)
    for ticker, rows in [] if options.appending else prices.groupby("ticker", sort=True):
        undefined = _features_never_complete(rows[PRICE_COLUMNS])
        if undefined is not None:
            named = ", ".join(undefined[:6]) + (", ..." if len(undefined) > 6 else "")
            log.add(
                Problem(
                    ", ".join(rows["_file"].unique()),
                    f"ticker {ticker} has no row past the {WARMUP_DAYS}-row warm-up on which "
                    "every stock feature is defined, so the dataset would hold none of it"
                    + (f" (never defined: {named})" if named else "")
                    + "; prices that do not move for 63 rows or more leave volatilities and "
                    "the RSI undefined",
                    column="ticker",
                )
            )
    log.raise_if_any()
    return prices.drop(columns="_file"), warnings


def _read_price_file(
    path: Path, mapping: dict[str, str] | None, options: ImportOptions
) -> pd.DataFrame:
    """One file's validated prices with a ``_file`` column; raises ``ImportFailed``."""
    table = read_table(path, options, mapping)
    if "ticker" not in table.frame.columns:
        table.frame["ticker"] = path.stem.upper()
    table.require(["date", *PRICE_COLUMNS])
    table.raise_if_any()
    frame = pd.DataFrame({"date": table.dates("date"), "ticker": table.text("ticker")})
    prices = ["open", "high", "low", "close"]
    for column in prices:
        frame[column] = table.numbers(column, bounds=(MIN_PRICE, MAX_PRICE))
    frame["volume"] = table.numbers("volume", bounds=(0, MAX_VOLUME))
    if "adj_close" in table.frame.columns:
        adjusted = table.numbers("adj_close", bounds=(MIN_PRICE, MAX_PRICE))
        frame[prices] = frame[prices].mul(adjusted / frame["close"], axis=0)
        for column in prices:
            scaled = frame[column]
            table.flag(
                (scaled < MIN_PRICE) | (scaled > MAX_PRICE),
                "adj_close",
                lambda i, column=column, scaled=scaled: (
                    f"{column} scaled by adj_close / close is {scaled.iloc[i]:g}; it must be "
                    f"between {MIN_PRICE:g} and {MAX_PRICE:g}"
                ),
            )
    table.flag(frame["high"] < frame["low"], "high", lambda _: "high is below low")
    duplicated = frame.duplicated(["date", "ticker"], keep=False) & frame["date"].notna()
    table.flag(
        duplicated,
        "date",
        lambda i: (
            f"duplicate (date, ticker) = ({frame['date'].iloc[i].date()}, "
            f"{frame['ticker'].iloc[i]})"
        ),
    )
    table.raise_if_any()
    return frame.assign(_file=table.name)


def _gap_warnings(file: str, ticker: str, dates: pd.Series, max_gap_days: int) -> list[str]:
    gaps = dates.diff().dt.days.to_numpy()
    positions = np.flatnonzero(gaps > max_gap_days)
    warnings = [
        f"{file}: {ticker} has no rows from {dates.iloc[position - 1].date()} to "
        f"{dates.iloc[position].date()} ({int(gaps[position])} days)"
        for position in positions[:MAX_GAP_WARNINGS]
    ]
    if len(positions) > MAX_GAP_WARNINGS:
        warnings.append(
            f"{file}: {ticker} has {len(positions) - MAX_GAP_WARNINGS} more gaps of over "
            f"{max_gap_days} days"
        )
    return warnings


def _features_never_complete(history: pd.DataFrame) -> list[str] | None:
    """None when some row of one ticker's date-sorted OHLCV has every stock feature, as the
    build requires of the rows it keeps; otherwise the features defined on no row at all.

    Runs the build's own feature code over overlapping chunks and stops at the first complete
    row, so a long valid history costs one chunk.
    """
    history = history.reset_index(drop=True)
    defined_somewhere = pd.Series(False, index=STOCK_FEATURES)
    for start in range(0, len(history), _FEATURE_CHECK_ROWS):
        lookback = min(start, _FEATURE_LOOKBACK_ROWS)
        chunk = history.iloc[start - lookback : start + _FEATURE_CHECK_ROWS]
        with np.errstate(all="ignore"):
            features = ticker_features(chunk).iloc[lookback:]
        if features.notna().all(axis=1).any():
            return None
        defined_somewhere |= features.notna().any()
    return [name for name in STOCK_FEATURES if not defined_somewhere[name]]


def read_headlines(path: Path, options: ImportOptions | None = None) -> pd.DataFrame:
    """Validated headlines (date, ticker, headline, source) with a VADER ``score``."""
    table = read_table(path, options or ImportOptions())
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


def read_policy_events(path: Path, options: ImportOptions | None = None) -> pd.DataFrame:
    """Validated policy events (date, type, urgency, sector[, stance])."""
    table = read_table(path, options or ImportOptions())
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


def read_macro_series(path: Path, options: ImportOptions | None = None) -> pd.DataFrame:
    """Validated macro observations (date, series, value[, released])."""
    table = read_table(path, options or ImportOptions())
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


def import_market(
    prices: Sequence[Path],
    *,
    news: Path | None = None,
    policy: Path | None = None,
    macro: Path | None = None,
    mapping: dict[str, str] | None = None,
    options: ImportOptions | None = None,
    bundled_macro: bool = True,
) -> tuple[MarketData, list[str]]:
    """Read and validate every file; raise ``ImportFailed`` listing all problems found.

    Without ``macro``, the bundled macro series are the macro context unless
    ``bundled_macro`` is False. The recipe's ``macro`` entry says which source was used and
    the span of each series; ``data.notes["context"]`` says it in sentences for the user.
    """
    options = options or ImportOptions()
    log = ProblemLog()
    results: dict[str, object] = {}
    readers = {
        "prices": lambda: read_prices(prices, mapping=mapping, options=options),
        "news": (lambda: read_headlines(news, options)) if news else None,
        "policy": (lambda: read_policy_events(policy, options)) if policy else None,
        "macro": (lambda: read_macro_series(macro, options)) if macro else None,
    }
    for kind, read in readers.items():
        try:  # read every file, so one run reports the problems of all of them
            results[kind] = read() if read else None
        except ImportFailed as failure:
            log.extend(failure)
    log.raise_if_any()
    frame, warnings = results["prices"]
    headlines, events, series = results["news"], results["policy"], results["macro"]
    if headlines is not None:
        unknown = sorted(set(headlines["ticker"]) - set(frame["ticker"]))
        if unknown:
            warnings.append(f"{Path(news).name}: no prices for tickers {', '.join(unknown)}")
    series, macro_source, notes = _macro_context(series, macro, frame, bundled_macro, warnings)
    files = {"prices": list(prices), "news": [news], "policy": [policy], "macro": [macro]}
    recipe = {
        "source": "import",
        "files": {
            role: [{"name": Path(p).name, "sha256": file_sha256(Path(p))} for p in paths if p]
            for role, paths in files.items()
        },
        "mapping": mapping or {},
        "macro": macro_source,
    }
    data = MarketData(
        prices=frame,
        headlines=headlines,
        policy_events=events,
        macro_series=series,
        recipe=recipe,
        notes={"context": notes},
    )
    return data, warnings


def _macro_context(
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


def parse_mapping(text: str, allowed: Sequence[str] | None = None) -> dict[str, str]:
    """``date=Date,close=Close`` -> {"date": "Date", "close": "Close"}; names outside
    ``allowed`` (default: the price columns) are refused."""
    allowed = list(allowed or ["date", "ticker", *PRICE_COLUMNS, "adj_close"])
    mapping = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        canonical, sep, source = part.partition("=")
        canonical = canonical.strip().lower()
        if not sep or not source.strip():
            raise ValueError(f"mapping entry {part!r} is not of the form name=Column")
        if canonical not in allowed:
            raise ValueError(
                f"mapping entry {part!r}: {canonical!r} is not one of {', '.join(allowed)}"
            )
        mapping[canonical] = source.strip()
    return mapping
