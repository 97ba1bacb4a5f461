"""Users' tables read as text and checked cell by cell.

What every importer shares, market and recommender alike: the file read as stripped strings
(``core.table_files``), RecBole's atomic-file headers (``user_id:token``: the name is kept, the
type recorded in ``Table.types``), the column mapping, parsers for text, numbers, timestamps
(ISO 8601, Unix seconds or milliseconds, detected per column) and choices that turn each bad
cell into a ``Problem`` (``core.import_problems``), and ``ProblemLog``, which gathers the
problems of several files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.import_problems import ImportFailed, Problem
from core.table_files import (
    ReadOptions,
    check_decompressed_size,
    check_shape,
    file_bytes,
    header_names,
    is_gzip,
    read_csv_text,
    read_parquet_text,
    sniff_separator,
)

FIRST_DATE, LAST_DATE = pd.Timestamp("1700-01-01"), pd.Timestamp("2200-12-31")
"""Accepted dates: pandas holds nanoseconds from 1677 to 2262, and market labels look up to
the longest horizon past the last date."""

UNIX_EPOCH = pd.Timestamp("1970-01-01")
"""Where Unix times start: a negative one is a sign of a wrong column, never a real event."""

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
"""The field types of RecBole's atomic files, written after the name: ``rating:float``."""

MILLISECONDS_FROM = 1e11
"""A Unix time at or above this magnitude is in milliseconds (from 1973-03-03), below it in
seconds (up to the year 5138): one rule for a whole column."""

TIMESTAMP_FORMATS = {1: "ISO 8601 dates", 2: "Unix seconds (UTC)", 3: "Unix milliseconds (UTC)"}
"""The formats a timestamp column may hold, by the code ``_timestamps`` gives each value."""
_BAD, _ISO, _SECONDS, _MILLISECONDS = 0, 1, 2, 3
_NUMBER = r"[+-]?[0-9]+(?:\.[0-9]*)?"

MAX_PROBLEMS_PER_FILE = 50
"""Problems described per file; beyond it they are only counted (a million bad rows would
otherwise cost a million messages)."""


# A trailing UTC offset (Z, +01:00, -0500, +01) after a time of day.
_UTC_OFFSET = (
    r"^([0-9]{4}-?[0-9]{2}-?[0-9]{2}[T ][0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2}(?:[.,][0-9]+)?)?)?)"
    r" *(?:[Zz]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)$"
)


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
    types: dict[str, str] = field(default_factory=dict)
    """Declared field types of an atomic file's columns (``token``, ``float``, ...)."""
    date_formats: dict[str, str] = field(default_factory=dict)
    """The format each timestamp column was read in (a value of ``TIMESTAMP_FORMATS``)."""
    separator: str | None = None
    """The field separator a text file was read with (None for Parquet)."""

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
            message = f"missing column(s) {', '.join(missing)}; the file has: {found}"
            if self.csv and _looks_like_data(self.frame.columns):
                message += (
                    ". Line 1 holds values, not column names: the file has no header line "
                    "(MovieLens's u.data has none). Add one that names each column in the "
                    "file's order, with the same separator"
                )
            self.problem(message)
        return not missing

    def text(self, column: str) -> pd.Series:
        values = self.frame[column]
        self.flag(values == "", column, lambda _: "missing value")
        return values

    def dates(self, column: str, *, keep_time: bool = False) -> pd.Series:
        """Timestamps (dates, or date-times with ``keep_time``) as naive wall-clock times.

        A column holds one format, detected from its values: ISO 8601 dates or date-times,
        Unix seconds, or Unix milliseconds (numbers from ``MILLISECONDS_FROM`` up), the last
        two in UTC. A value of another format than most of the column's is a problem of its
        row naming both; the format read is kept in ``date_formats``. An ISO value with a UTC
        offset keeps its own wall clock and the offset is dropped: a daily bar dated
        2020-01-03T00:00+01:00 is the 3rd, as its exchange printed it, not the 2nd as in UTC.
        Files may mix offsets and plain dates. A value that is not a timestamp, a negative Unix
        time, or a value outside ``FIRST_DATE`` .. ``LAST_DATE`` is a problem of its row; none
        escapes as an exception.
        """
        raw = self.frame[column]
        parsed, kinds = _timestamps(raw)
        self.flag(
            kinds == _BAD,
            column,
            lambda i: f"{raw.iloc[i]!r} is not a date like 2024-01-31 (or a Unix time)",
        )
        found = {kind: int((kinds == kind).sum()) for kind in TIMESTAMP_FORMATS}
        chosen = max(found, key=found.get)
        if found[chosen]:
            self.date_formats[column] = TIMESTAMP_FORMATS[chosen]
            example = int(np.argmax(kinds == chosen))
            where = f"line {example + 2}" if self.csv else f"row {example + 1}"
            self.flag(
                (kinds != chosen) & (kinds != _BAD),
                column,
                lambda i: (
                    f"{raw.iloc[i]!r} reads as {TIMESTAMP_FORMATS[int(kinds[i])]}, but the column "
                    f"holds {TIMESTAMP_FORMATS[chosen]} ({where}: {raw.iloc[example]!r}); "
                    "write one format per column"
                ),
            )
            parsed = parsed.mask((kinds != chosen) & (kinds != _BAD))
        unix = np.isin(kinds, (_SECONDS, _MILLISECONDS))
        negative = unix & (parsed < UNIX_EPOCH).to_numpy()
        self.flag(
            negative,
            column,
            lambda i: f"{raw.iloc[i]!r} is a negative Unix time; Unix times count from 1970-01-01",
        )
        parsed = parsed.mask(negative)
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
        values = pd.to_numeric(self.frame[column], errors="coerce").astype(float)
        self.check_numbers(column, values, bounds=bounds)
        return values

    def check_numbers(
        self,
        column: str,
        values: pd.Series,
        *,
        bounds: tuple[float, float] | None = None,
        skip: np.ndarray | None = None,
    ) -> None:
        """A problem on each row whose value (``column`` read as numbers) is not finite or
        lies outside ``bounds``; rows where ``skip`` holds (rows left out) are not checked."""
        raw = self.frame[column]
        finite = np.isfinite(values.to_numpy())
        checked = np.ones(len(values), dtype=bool) if skip is None else ~np.asarray(skip)
        self.flag(~finite & checked, column, lambda i: f"{raw.iloc[i]!r} is not a finite number")
        if bounds is not None:
            low, high = bounds
            self.flag(
                finite & checked & ((values < low) | (values > high)).to_numpy(),
                column,
                lambda i: f"{values.iloc[i]:g} must be between {low:g} and {high:g}",
            )

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


def _timestamps(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Each value's time (naive, NaT where unreadable) and format code: ``_ISO``,
    ``_SECONDS``, ``_MILLISECONDS`` or ``_BAD``. Eight-digit numbers read as compact ISO
    dates (20240131) when they are one; Unix times that far back (1970-1973) are not met."""
    number = raw.str.fullmatch(_NUMBER).to_numpy(dtype=bool)
    textual = ~number | (number & (raw.str.len().to_numpy() == 8))
    kinds = np.full(len(raw), _BAD, dtype=np.int8)
    times = np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[us]")
    if textual.any():
        iso = _wall_clock(raw[textual]).to_numpy(dtype="datetime64[us]")
        times[textual] = iso
        kinds[textual] = np.where(np.isnat(iso), _BAD, _ISO)
    epoch = number & (kinds != _ISO)
    if epoch.any():
        # as floats: 400 digits are inf (outside), where an integer would overflow the cast
        values = raw[epoch].astype(float).to_numpy()
        milliseconds = np.abs(values) >= MILLISECONDS_FROM
        seconds = np.where(milliseconds, values / 1000, values)
        readable = np.abs(seconds) < 1e12  # beyond, microseconds overflow; far outside anyway
        micro = np.where(readable, np.round(seconds * 1e6), 0).astype(np.int64)
        stamps = micro.astype("datetime64[us]")
        stamps[~readable] = np.datetime64("NaT")
        times[epoch] = stamps
        kinds[epoch] = np.where(milliseconds, _MILLISECONDS, _SECONDS)
        # a number too large to be a time is still of its format: it is reported as outside
        times[np.flatnonzero(epoch)[~readable]] = np.datetime64("9999-12-31", "us")
    return pd.Series(times, index=raw.index), kinds


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


def read_table(path: Path, options: ReadOptions, mapping: dict[str, str] | None = None) -> Table:
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
    if is_gzip(path):
        check_decompressed_size(path, options.max_file_bytes)
    csv = path.suffix.lower() != ".parquet"
    sep = (options.sep or sniff_separator(path)) if csv else None
    check_shape(path, options, sep)
    _refuse_repeated_names(path, sep)
    try:
        frame = read_csv_text(path, sep) if sep is not None else read_parquet_text(path)
    except ImportFailed:
        raise
    except Exception as error:  # a parser's own message says what and where
        raise ImportFailed([Problem(name, f"cannot be read: {error}")]) from error
    if csv and frame.empty and not file_bytes(path).decode("utf-8-sig", "replace").strip():
        raise ImportFailed([Problem(name, "the file is empty")])
    names, types = _atomic_names([str(c).strip() for c in frame.columns])
    frame.columns = names
    table = Table(name, frame, csv, types=types, separator=sep)
    _apply_mapping(table, mapping or {})
    if table.frame.empty:
        table.problem("the file has a header but no data rows")
    table.raise_if_any()
    return table


def _refuse_repeated_names(path: Path, sep: str | None) -> None:
    """Refuse a header that names a column twice (``close`` and ``close``, or
    ``user_id:token`` and ``user_id:float``): which one holds the data is anyone's guess. A
    header of values (no header line) is left to ``Table.require``, which says so."""
    written = [name.strip() for name in header_names(path, sep)]
    if _looks_like_data(written):
        return
    names, _ = _atomic_names(written)
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        positions.setdefault(name, []).append(position)
    problems = [
        Problem(
            path.name,
            f"the header names this column {'twice' if len(at) == 2 else f'{len(at)} times'} "
            f"(columns {', '.join(map(str, at))}); keep one, or rename the others",
            column=name,
        )
        for name, at in positions.items()
        if len(at) > 1
    ]
    if problems:
        raise ImportFailed(problems)


def _looks_like_data(names: Iterable[object]) -> bool:
    """A header line of numbers only (ids, ratings, Unix times) is the first data row."""
    names = [str(n).strip() for n in names]
    return bool(names) and all(re.fullmatch(_NUMBER, n) for n in names)


def _atomic_names(columns: list[str]) -> tuple[list[str], dict[str, str]]:
    """RecBole atomic-file headers (``item_id:token``) -> names and their declared types;
    other headers pass unchanged."""
    names, types = [], {}
    for column in columns:
        name, sep, kind = column.rpartition(":")
        if sep and name.strip() and kind.strip().lower() in ATOMIC_TYPES:
            names.append(name.strip())
            types[name.strip()] = kind.strip().lower()
        else:
            names.append(column)
    return names, types


def _apply_mapping(table: Table, mapping: dict[str, str]) -> None:
    """Rename source columns to canonical names: the mapping first, then case-insensitively.
    A mapping may name an atomic-file column with its type (``rating=stars:float``)."""
    columns = list(table.frame.columns)
    mapping = {canonical: _atomic_names([source])[0][0] for canonical, source in mapping.items()}
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
    table.types = {renames.get(column, column): kind for column, kind in table.types.items()}
    duplicated = table.frame.columns[table.frame.columns.duplicated()]
    for column in duplicated.unique():
        table.problem(f"two source columns map to {column!r}")
