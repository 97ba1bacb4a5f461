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

Real price files come with a few rows and tickers the build cannot use; by default they are
left out and recorded in a ``LeftOut`` (per file: rows by reason with their first lines,
tickers with their row counts) that the import reports, and the rest is imported:
- a row with a missing (empty, ``nan``, ``null``, ...), zero or negative open, high, low,
  close or adj_close, or with high below low;
- every row of a repeated (date, ticker) but the last complete one (in a file, and across
  files: the later file's row is kept);
- a ticker with fewer rows than the feature warm-up plus the longest horizon
  (``ImportOptions.min_rows``), or with no row on which every stock feature is defined.
If nothing is left, the import is refused with what was left out. ``ImportOptions.strict``
(``--strict``) refuses each of these instead, naming file, line and column. Other problems
(a value that is not a number, a bad date, a price outside the bounds) are always refused.

Formats:
- prices: CSV or Parquet, long (date, ticker, open, high, low, close, volume[, adj_close])
  or one file per ticker. The ticker is read from a ``ticker``, ``symbol`` or ``name``
  column (the first present, names matched case-insensitively); a file without one is
  named after the file (its stem, upper-cased). ``mapping`` renames source columns; column
  names match case-insensitively with blanks as underscores, so ``Adj Close``, ``Adj_Close``
  and ``adj_close`` are all the adjusted close. With an adjusted close, it is preferred to
  the close: close := adj_close, and open, high and low are scaled by adj_close / close
  (the row's adjustment factor), so splits and dividends do not show up as jumps;
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
from core.market.config import DEFAULT_HORIZONS
from core.market.context_files import (
    macro_context,
    read_headlines,
    read_macro_series,
    read_policy_events,
)
from core.market.features import PRICE_COLUMNS, STOCK_FEATURES, WARMUP_DAYS, ticker_features
from core.market.left_out import LeftOut
from core.market.sources import MarketData
from core.table_files import ReadOptions, return_freed_arrow_memory
from core.user_tables import ProblemLog, read_table

MAX_GAP_WARNINGS = 10
"""Date-gap warnings listed per ticker; beyond it they are counted."""

MIN_PRICE, MAX_PRICE = 1e-6, 1e12
"""Accepted prices. Within them no feature overflows or underflows, whatever the ratios."""
MAX_VOLUME = 1e15
"""Largest accepted volume: price x volume and volume sums over the history stay finite."""

MISSING_CELLS = frozenset({"", "nan", "na", "n/a", "#n/a", "null", "none"})
"""Price cells read as missing (compared lower-cased): such a row is left out."""
TICKER_COLUMNS = ("ticker", "symbol", "name")
"""Columns read as the ticker, the first present one; without any, the file names it."""

MISSING_PRICE = "missing price"
NON_POSITIVE_PRICE = "zero or negative price"
HIGH_BELOW_LOW = "high below low"
REPEATED = "repeated (date, ticker), the last complete row kept"
REPEATED_LATER = "repeated (date, ticker) in a later file, whose row is kept"

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
    strict: bool = False
    """Refuse, naming file, line and column, what is otherwise left out and reported: rows
    with a missing, zero or negative price or high below low, repeated (date, ticker) rows,
    tickers with too little history (``--strict``)."""

    @property
    def min_rows(self) -> int:
        return 1 if self.appending else WARMUP_DAYS + max(self.horizons)


def read_prices(
    paths: Sequence[Path],
    *,
    mapping: dict[str, str] | None = None,
    options: ImportOptions | None = None,
    left_out: LeftOut | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Validated long OHLCV (date, ticker, open, high, low, close, volume) and warnings.

    A file without a ticker column (``ticker``, ``symbol`` or ``name``) is one ticker's
    history, named after the file. With an ``adj_close`` column, close becomes the adjusted
    close and open/high/low are scaled by adj_close / close. Unless ``options.strict``, the
    rows and tickers the build cannot use are left out (module docstring) and recorded in
    ``left_out``; without one, they are described in the warnings.
    """
    options = options or ImportOptions()
    record = left_out if left_out is not None else LeftOut()
    frames, warnings = [], []
    log = ProblemLog()
    for path in paths:
        try:
            frame = _read_price_file(Path(path), mapping, options, record)
        except ImportFailed as failure:  # go on, so one run reports every file's problems
            log.extend(failure)
        else:
            frames.append(frame)
    return_freed_arrow_memory()  # the files' string cells are gone; only numbers remain
    log.raise_if_any()
    prices = _repeated_across_files(pd.concat(frames, ignore_index=True), options, record)
    prices = _without_short_histories(prices, options, record)
    for (ticker, file), rows in prices.groupby(["ticker", "_file"], sort=True):
        if not rows["date"].is_monotonic_increasing:
            warnings.append(f"{file}: rows of {ticker} were not in date order; sorted them")
        warnings += _gap_warnings(file, ticker, rows["date"].sort_values(), options.max_gap_days)
    prices = prices.sort_values(["ticker", "date"], kind="stable", ignore_index=True)
    if not options.appending:
        prices = _without_undefined_features(prices, options, record)
    if prices.empty:
        names = [Path(path).name for path in paths]
        files = ", ".join(names) if len(names) <= 3 else f"all {len(names)} price files"
        raise ImportFailed(
            [
                Problem(
                    files,
                    "nothing is left to import: every row or ticker was left out, as listed "
                    "below (--strict refuses each one, naming its line)",
                ),
                *(Problem(file, text) for file, text in record.by_file().items()),
            ]
        )
    if left_out is None:
        warnings += record.describe()
    return prices.drop(columns=["_file", "_line"]), warnings


def _read_price_file(
    path: Path, mapping: dict[str, str] | None, options: ImportOptions, left_out: LeftOut
) -> pd.DataFrame:
    """One file's validated prices with ``_file`` and ``_line`` (its line in a CSV, row in
    a Parquet) columns; raises ``ImportFailed``. Without ``options.strict``, rows with a
    missing, zero or negative price or high below low, and every row of a repeated
    (date, ticker) but the last complete one, are left out and recorded in ``left_out``."""
    table = read_table(path, options, mapping)
    ticker_column = next((c for c in TICKER_COLUMNS if c in table.frame.columns), None)
    if ticker_column is None:
        ticker_column = "ticker"
        table.frame["ticker"] = path.stem.upper()
    table.require(["date", *PRICE_COLUMNS])
    table.raise_if_any()
    frame = pd.DataFrame({"date": table.dates("date"), "ticker": table.text(ticker_column)})
    levels = ["open", "high", "low", "close"]
    adjusted = "adj_close" in table.frame.columns
    checked = [*levels, "volume", *(["adj_close"] if adjusted else [])]
    values = {c: pd.to_numeric(table.frame[c], errors="coerce").astype(float) for c in checked}
    missing = np.zeros(len(frame), dtype=bool)
    non_positive = np.zeros(len(frame), dtype=bool)
    if not options.strict:
        for column in [*levels, *(["adj_close"] if adjusted else [])]:
            missing |= table.frame[column].str.lower().isin(MISSING_CELLS).to_numpy()
            non_positive |= (values[column] <= 0).to_numpy()
        non_positive &= ~missing
    skip = missing | non_positive
    for column in checked:
        bounds = (0, MAX_VOLUME) if column == "volume" else (MIN_PRICE, MAX_PRICE)
        table.check_numbers(column, values[column], bounds=bounds, skip=skip)
    for column in [*levels, "volume"]:
        frame[column] = values[column]
    if adjusted:
        frame[levels] = frame[levels].mul(values["adj_close"] / frame["close"], axis=0)
        for column in levels:
            scaled = frame[column]
            table.flag(
                ((scaled < MIN_PRICE) | (scaled > MAX_PRICE)).to_numpy() & ~skip,
                "adj_close",
                lambda i, column=column, scaled=scaled: (
                    f"{column} scaled by adj_close / close is {scaled.iloc[i]:g}; it must be "
                    f"between {MIN_PRICE:g} and {MAX_PRICE:g}"
                ),
            )
    below = (frame["high"] < frame["low"]).to_numpy() & ~skip
    repeated = np.zeros(len(frame), dtype=bool)
    if options.strict:
        table.flag(below, "high", lambda _: "high is below low")
        duplicated = frame.duplicated(["date", "ticker"], keep=False) & frame["date"].notna()
        table.flag(
            duplicated,
            "date",
            lambda i: (
                f"duplicate (date, ticker) = ({frame['date'].iloc[i].date()}, "
                f"{frame['ticker'].iloc[i]})"
            ),
        )
    else:
        complete = np.flatnonzero(~(skip | below))
        rows = frame.iloc[complete]
        earlier = rows.duplicated(["date", "ticker"], keep="last") & rows["date"].notna()
        repeated[complete[earlier.to_numpy()]] = True
    table.raise_if_any()
    lines = np.arange(len(frame)) + (2 if table.csv else 1)
    for reason, mask in [
        (MISSING_PRICE, missing),
        (NON_POSITIVE_PRICE, non_positive),
        (HIGH_BELOW_LOW, below),
        (REPEATED, repeated),
    ]:
        if mask.any():
            left_out.add_rows(table.name, reason, lines[mask])
    kept = ~(skip | below | repeated)
    return frame[kept].assign(_file=table.name, _line=lines[kept])


def _repeated_across_files(
    prices: pd.DataFrame, options: ImportOptions, left_out: LeftOut
) -> pd.DataFrame:
    """The prices without the rows whose (date, ticker) a later file repeats; ``--strict``
    refuses such rows instead."""
    if options.strict:
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
        return prices
    earlier = prices.duplicated(["date", "ticker"], keep="last")
    if not earlier.any():
        return prices
    for file, rows in prices[earlier].groupby("_file", sort=False):
        left_out.add_rows(file, REPEATED_LATER, rows["_line"].to_numpy())
    return prices[~earlier]


def _without_short_histories(
    prices: pd.DataFrame, options: ImportOptions, left_out: LeftOut
) -> pd.DataFrame:
    """The prices without the tickers that have fewer rows than the feature warm-up plus the
    longest horizon needs; ``--strict`` refuses them instead."""
    counts = prices.groupby("ticker", sort=True).size()
    short = counts[counts < options.min_rows]
    if short.empty:
        return prices
    files = prices[prices["ticker"].isin(short.index)].groupby("ticker")["_file"].unique()
    needed = (
        f"at least {options.min_rows} are needed ({WARMUP_DAYS} days of feature warm-up + "
        f"the {max(options.horizons)}-day label horizon)"
    )
    log = ProblemLog()
    for ticker, rows in short.items():
        named = ", ".join(files[ticker])
        if options.strict:
            message = f"ticker {ticker} has {rows} rows; {needed}"
            log.add(Problem(named, message, column="ticker"))
        else:
            reason = (
                f"{options.min_rows} needed ({WARMUP_DAYS}-row feature warm-up + "
                f"{max(options.horizons)}-day label horizon)"
            )
            left_out.add_ticker(named, str(ticker), int(rows), reason)
    log.raise_if_any()
    return prices[~prices["ticker"].isin(short.index)]


def _without_undefined_features(
    prices: pd.DataFrame, options: ImportOptions, left_out: LeftOut
) -> pd.DataFrame:
    """The date-sorted prices without the tickers on which no row past the warm-up has every
    stock feature (the build would keep none of them); ``--strict`` refuses them instead."""
    log = ProblemLog()
    undefined_tickers = []
    for ticker, rows in prices.groupby("ticker", sort=True):
        undefined = _features_never_complete(rows[PRICE_COLUMNS])
        if undefined is None:
            continue
        named = ", ".join(undefined[:6]) + (", ..." if len(undefined) > 6 else "")
        reason = (
            f"no row past the {WARMUP_DAYS}-row warm-up on which every stock feature is "
            "defined, so the dataset would hold none of it"
            + (f" (never defined: {named})" if named else "")
            + "; prices that do not move for 63 rows or more leave volatilities and the RSI "
            "undefined"
        )
        files = ", ".join(rows["_file"].unique())
        if options.strict:
            log.add(Problem(files, f"ticker {ticker} has {reason}", column="ticker"))
        else:
            left_out.add_ticker(files, str(ticker), len(rows), reason)
            undefined_tickers.append(ticker)
    log.raise_if_any()
    return prices[~prices["ticker"].isin(undefined_tickers)].reset_index(drop=True)


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
    What the price import left out is ``data.notes["left_out"]`` (a ``LeftOut``; its
    ``describe()`` gives one line per file) and, when anything was, the recipe's
    ``left_out`` entry (counts).
    """
    options = options or ImportOptions()
    log = ProblemLog()
    left_out = LeftOut()
    results: dict[str, object] = {}
    readers = {
        "prices": lambda: read_prices(prices, mapping=mapping, options=options, left_out=left_out),
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
    series, macro_source, notes = macro_context(series, macro, frame, bundled_macro, warnings)
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
    if left_out:
        recipe["left_out"] = left_out.to_dict()
    data = MarketData(
        prices=frame,
        headlines=headlines,
        policy_events=events,
        macro_series=series,
        recipe=recipe,
        notes={"context": notes, "left_out": left_out},
    )
    return data, warnings


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
