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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core.files import file_sha256
from core.market.context import MACRO_SERIES, POLICY_STANCE, SECTORS, score_headlines
from core.market.features import PRICE_COLUMNS, STOCK_FEATURES, WARMUP_DAYS, ticker_features
from core.market.sources import MarketData

MAX_LISTED_PROBLEMS = 20
"""Problems written out in an ``ImportFailed`` message; the rest are counted."""
MAX_PROBLEMS_PER_FILE = 50
"""Problems described per file; beyond it they are only counted (a million bad rows would
otherwise cost a million messages)."""
MAX_GAP_WARNINGS = 10
"""Date-gap warnings listed per ticker; beyond it they are counted."""

MIN_PRICE, MAX_PRICE = 1e-6, 1e12
"""Accepted prices. Within them no feature overflows or underflows, whatever the ratios."""
MAX_VOLUME = 1e15
"""Largest accepted volume: price x volume and volume sums over the history stay finite."""
FIRST_DATE, LAST_DATE = pd.Timestamp("1700-01-01"), pd.Timestamp("2200-12-31")
"""Accepted dates: the build converts dates to nanoseconds, which hold 1677 to 2262, and
labels look up to the longest horizon past the last date."""

# A trailing UTC offset (Z, +01:00, -0500, +01) after a time of day.
_UTC_OFFSET = (
    r"^([0-9]{4}-?[0-9]{2}-?[0-9]{2}[T ][0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2}(?:[.,][0-9]+)?)?)?)"
    r" *(?:[Zz]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)$"
)
# Rows of history a stock feature reads before its own date (the 252-day windows and the
# 12-month momentum), with room to spare.
_FEATURE_LOOKBACK_ROWS = 2 * WARMUP_DAYS
_FEATURE_CHECK_ROWS = 20_000


@dataclass(frozen=True)
class ImportOptions:
    """Limits applied to every import."""

    max_file_bytes: int = 50 * 1024 * 1024
    """Largest accepted file (the dashboard's upload limit is the same 50 MB)."""
    max_gap_days: int = 10
    """A gap between consecutive dates of a ticker longer than this many days is a warning."""
    horizons: tuple[int, ...] = (7, 30)
    """Label horizons; a ticker needs the feature warm-up plus the longest horizon in rows."""

    @property
    def min_rows(self) -> int:
        return WARMUP_DAYS + max(self.horizons)


@dataclass(frozen=True)
class Problem:
    file: str
    message: str
    row: int | None = None  # 1-based data row
    column: str | None = None
    csv: bool = True

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"line {self.row + 1}" if self.csv else f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}"


class ImportFailed(ValueError):
    """One or more problems in the imported files; nothing was built or stored.

    ``problems`` are the described ones; ``total`` counts every problem found, described or not.
    """

    def __init__(self, problems: Sequence[Problem], total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = max(total or 0, len(self.problems))
        lines = [str(p) for p in self.problems[:MAX_LISTED_PROBLEMS]]
        if self.total > len(lines):
            lines.append(f"... and {self.total - len(lines)} more problems")
        super().__init__("The import failed; nothing was stored.\n" + "\n".join(lines))


@dataclass
class ProblemLog:
    """Problems of one or more files: those described, and how many were found in all."""

    problems: list[Problem] = field(default_factory=list)
    total: int = 0

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)
        self.total += 1

    def extend(self, other: ProblemLog | ImportFailed | Table) -> None:
        self.problems.extend(other.problems)
        self.total += other.total

    def raise_if_any(self) -> None:
        if self.total:
            raise ImportFailed(self.problems, self.total)


@dataclass
class Table:
    """A file's cells as stripped strings, with the bookkeeping to report problems precisely.

    At most ``MAX_PROBLEMS_PER_FILE`` problems are described; ``total`` counts them all.
    """

    name: str
    frame: pd.DataFrame
    csv: bool
    problems: list[Problem] = field(default_factory=list)
    total: int = 0

    def problem(self, message: str, row: int | None = None, column: str | None = None) -> None:
        self.total += 1
        if len(self.problems) < MAX_PROBLEMS_PER_FILE:
            self.problems.append(Problem(self.name, message, row, column, self.csv))

    def flag(
        self, mask: pd.Series | np.ndarray, column: str | None, message: Callable[[int], str]
    ) -> None:
        """A problem on each row where ``mask`` holds; ``message`` takes the row's position
        and is only called for rows that are described."""
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        room = max(MAX_PROBLEMS_PER_FILE - len(self.problems), 0)
        for position in positions[:room]:
            self.problems.append(
                Problem(self.name, message(int(position)), int(position) + 1, column, self.csv)
            )
        self.total += len(positions)

    def require(self, columns: Iterable[str]) -> bool:
        missing = [c for c in columns if c not in self.frame.columns]
        if missing:
            found = ", ".join(map(str, self.frame.columns)) or "none"
            self.problem(f"missing column(s) {', '.join(missing)}; the file has: {found}")
        return not missing

    def text(self, column: str) -> pd.Series:
        values = self.frame[column]
        self.flag(values == "", column, lambda _: "missing value")
        return values

    def dates(self, column: str, *, keep_time: bool = False) -> pd.Series:
        """ISO 8601 dates (or date-times with ``keep_time``) as naive wall-clock times.

        A value with a UTC offset keeps its own wall clock and the offset is dropped: a daily
        bar dated 2020-01-03T00:00+01:00 is the 3rd, as its exchange printed it, not the 2nd
        as in UTC. Files may mix offsets and plain dates. A value that is not a date, or is
        outside ``FIRST_DATE`` .. ``LAST_DATE``, is a problem of its row; none escapes as an
        exception.
        """
        raw = self.frame[column]
        parsed = _wall_clock(raw)
        self.flag(parsed.isna(), column, lambda i: f"{raw.iloc[i]!r} is not a date like 2024-01-31")
        outside = (parsed < FIRST_DATE) | (parsed > LAST_DATE)
        self.flag(
            outside,
            column,
            lambda i: f"{raw.iloc[i]!r} is outside {FIRST_DATE.date()} .. {LAST_DATE.date()}",
        )
        parsed = parsed.mask(outside)
        return parsed if keep_time else parsed.dt.normalize()

    def numbers(self, column: str, *, bounds: tuple[float, float] | None = None) -> pd.Series:
        """Finite numbers, within ``bounds`` (inclusive) when given."""
        raw = self.frame[column]
        values = pd.to_numeric(raw, errors="coerce").astype(float)
        finite = np.isfinite(values)
        self.flag(~finite, column, lambda i: f"{raw.iloc[i]!r} is not a finite number")
        if bounds is not None:
            low, high = bounds
            self.flag(
                finite & ((values < low) | (values > high)),
                column,
                lambda i: f"{values.iloc[i]:g} must be between {low:g} and {high:g}",
            )
        return values

    def choice(self, column: str, allowed: Sequence[str]) -> pd.Series:
        values = self.frame[column].str.lower()
        self.flag(
            ~values.isin(allowed),
            column,
            lambda i: f"{values.iloc[i]!r} is not one of: {', '.join(allowed)}",
        )
        return values

    def raise_if_any(self) -> None:
        if self.total:
            raise ImportFailed(self.problems, self.total)


def _wall_clock(raw: pd.Series) -> pd.Series:
    """Naive datetimes for ISO 8601 strings, each keeping its own wall clock; NaT where a
    value is not a date. Never raises for any cell content."""
    try:  # no offsets, or one shared offset: pandas parses them in one pass
        parsed = pd.to_datetime(raw, errors="coerce", format="ISO8601")
    except (ValueError, TypeError, OverflowError):  # offsets differ, or some values have none
        local = raw.str.replace(_UTC_OFFSET, r"\1", regex=True)
        try:
            parsed = pd.to_datetime(local, errors="coerce", format="ISO8601", utc=True)
        except (ValueError, TypeError, OverflowError):
            parsed = pd.Series([_one_wall_clock(value) for value in local], index=raw.index)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed


def _one_wall_clock(value: str) -> pd.Timestamp:
    try:
        return pd.to_datetime(value, format="ISO8601", utc=True).tz_localize(None)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT


def read_table(path: Path, options: ImportOptions, mapping: dict[str, str] | None = None) -> Table:
    """Read a CSV or Parquet file as stripped strings, after checks on size and encoding."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ImportFailed([Problem(name, f"no such file: {path}")])
    size = path.stat().st_size
    if size > options.max_file_bytes:
        limit = options.max_file_bytes / 1024**2
        raise ImportFailed(
            [Problem(name, f"the file is {size / 1024**2:.1f} MB; the limit is {limit:g} MB")]
        )
    if size == 0:
        raise ImportFailed([Problem(name, "the file is empty")])
    csv = path.suffix.lower() != ".parquet"
    try:
        frame = _read_csv(path) if csv else _read_parquet(path)
    except ImportFailed:
        raise
    except Exception as error:  # a parser's own message says what and where
        raise ImportFailed([Problem(name, f"cannot be read: {error}")]) from error
    if csv and frame.empty and not path.read_bytes().decode("utf-8-sig", "replace").strip():
        raise ImportFailed([Problem(name, "the file is empty")])
    frame.columns = [str(c).strip() for c in frame.columns]
    table = Table(name, frame, csv)
    _apply_mapping(table, mapping or {})
    if table.frame.empty:
        table.problem("the file has a header but no data rows")
    table.raise_if_any()
    return table


def _read_csv(path: Path) -> pd.DataFrame:
    """Every cell as a stripped string. Arrow's reader comes first: its strings are not
    Python objects, so a large file costs a fraction of the memory; files it refuses (ragged
    rows, a header without a final newline) go to pandas' C reader, which reads short rows
    with empty cells and names the line of a row with too many."""
    text_only = {"dtype": str, "keep_default_na": False, "encoding": "utf-8-sig"}
    try:
        try:
            frame = pd.read_csv(path, engine="pyarrow", **text_only)
        except UnicodeDecodeError:
            raise
        except Exception:  # the C reader below reports what is wrong, and where
            frame = pd.read_csv(path, skipinitialspace=True, **text_only)
    except UnicodeDecodeError as error:
        raise _not_utf8(path) from error
    except pd.errors.EmptyDataError as error:  # blank lines only: not even a header
        raise ImportFailed([Problem(path.name, "the file is empty")]) from error
    if not isinstance(frame.index, pd.RangeIndex):  # the C reader's implicit index column
        raise ImportFailed(
            [
                Problem(
                    path.name, "the first data row has more fields than the header (line 1) names"
                )
            ]
        )
    return _stripped_text(frame)


def _not_utf8(path: Path) -> ImportFailed:
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return ImportFailed(
            [Problem(path.name, f"line {line}: the file is not UTF-8 text (byte {error.start})")]
        )
    return ImportFailed([Problem(path.name, "the file is not UTF-8 text")])


def _read_parquet(path: Path) -> pd.DataFrame:
    return _stripped_text(pd.read_parquet(path))


def _stripped_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as strings without surrounding blanks, missing cells as "" (column by column, so
    only one column is ever copied at a time)."""
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        frame.isetitem(position, column.astype(str).where(column.notna(), "").str.strip())
    _return_freed_arrow_memory()
    return frame


def _return_freed_arrow_memory() -> None:
    """Arrow's allocator keeps freed blocks for reuse; the parse's scratch space is not needed
    again, and handing it back lowers the peak of the build that follows an import."""
    pa.default_memory_pool().release_unused()


def _apply_mapping(table: Table, mapping: dict[str, str]) -> None:
    """Rename source columns to canonical names: the mapping first, then case-insensitively."""
    columns = list(table.frame.columns)
    for canonical, source in mapping.items():
        if source not in columns:
            table.problem(
                f"the mapping {canonical}={source} names a column that is not in the file; "
                f"the file has: {', '.join(columns)}"
            )
    renames = {source: canonical for canonical, source in mapping.items() if source in columns}
    for column in columns:
        if column not in renames:
            canonical = column.lower().replace(" ", "_")
            if canonical not in renames.values():
                renames[column] = canonical
    table.frame = table.frame.rename(columns=renames)
    duplicated = table.frame.columns[table.frame.columns.duplicated()]
    for column in duplicated.unique():
        table.problem(f"two source columns map to {column!r}")


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
    _return_freed_arrow_memory()  # the files' string cells are gone; only numbers remain
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
    for ticker, rows in prices.groupby("ticker", sort=True):
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
) -> tuple[MarketData, list[str]]:
    """Read and validate every file; raise ``ImportFailed`` listing all problems found."""
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
    files = {"prices": list(prices), "news": [news], "policy": [policy], "macro": [macro]}
    recipe = {
        "source": "import",
        "files": {
            role: [{"name": Path(p).name, "sha256": file_sha256(Path(p))} for p in paths if p]
            for role, paths in files.items()
        },
        "mapping": mapping or {},
    }
    data = MarketData(
        prices=frame, headlines=headlines, policy_events=events, macro_series=series, recipe=recipe
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
