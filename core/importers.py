"""Reading what users bring: OHLCV prices, news headlines, policy events and macro series.

Every file is validated in full before anything is built or stored. Each problem names the
file, the line (CSV, counting the header as line 1) or row (Parquet), and the column; all
problems of a file are collected and raised together as ``ImportFailed``. Problems that do not
make the data wrong (unsorted rows, long gaps, tickers without prices) are returned as
warnings instead.

Formats:
- prices: CSV or Parquet, long (date, ticker, open, high, low, close, volume[, adj_close])
  or one file per ticker (the file name is the ticker); ``mapping`` renames source columns;
- news: CSV (date, ticker, headline[, source]), scored with VADER;
- policy: CSV (date, type, urgency 1-5, sector[, stance]);
- macro: CSV (date, series, value[, released]).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.context import MACRO_SERIES, POLICY_STANCE, SECTORS, score_headlines
from core.features import PRICE_COLUMNS, WARMUP_DAYS
from core.files import file_sha256
from core.sources import MarketData

MAX_LISTED_PROBLEMS = 20


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
    """One or more problems in the imported files; nothing was built or stored."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = [str(p) for p in self.problems[:MAX_LISTED_PROBLEMS]]
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"... and {len(self.problems) - MAX_LISTED_PROBLEMS} more problems")
        super().__init__("The import failed; nothing was stored.\n" + "\n".join(lines))


@dataclass
class Table:
    """A file's cells as strings, with the bookkeeping to report problems precisely."""

    name: str
    frame: pd.DataFrame
    csv: bool
    problems: list[Problem] = field(default_factory=list)

    def problem(self, message: str, row: int | None = None, column: str | None = None) -> None:
        self.problems.append(Problem(self.name, message, row, column, self.csv))

    def rows(self, mask: pd.Series | np.ndarray) -> Iterable[int]:
        """1-based data row numbers where ``mask`` holds."""
        return (int(i) + 1 for i in np.flatnonzero(np.asarray(mask)))

    def require(self, columns: Iterable[str]) -> bool:
        missing = [c for c in columns if c not in self.frame.columns]
        if missing:
            found = ", ".join(map(str, self.frame.columns)) or "none"
            self.problem(f"missing column(s) {', '.join(missing)}; the file has: {found}")
        return not missing

    def blank(self, column: str) -> pd.Series:
        values = self.frame[column]
        return values.isna() | (values.astype(str).str.strip() == "")

    def text(self, column: str) -> pd.Series:
        for row in self.rows(self.blank(column)):
            self.problem("missing value", row, column)
        return self.frame[column].astype(str).str.strip()

    def dates(self, column: str, *, keep_time: bool = False) -> pd.Series:
        raw = self.frame[column].astype(str).str.strip()
        parsed = pd.to_datetime(raw, errors="coerce", format="ISO8601")
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        for row in self.rows(parsed.isna()):
            self.problem(f"{raw.iloc[row - 1]!r} is not a date like 2024-01-31", row, column)
        return parsed if keep_time else parsed.dt.normalize()

    def numbers(
        self, column: str, *, minimum: float | None = None, strict: bool = False
    ) -> pd.Series:
        """Finite numbers; ``minimum`` is a lower bound (exclusive when ``strict``)."""
        raw = self.frame[column].astype(str).str.strip()
        values = pd.to_numeric(raw, errors="coerce").astype(float)
        bad = ~np.isfinite(values)
        for row in self.rows(bad):
            self.problem(f"{raw.iloc[row - 1]!r} is not a finite number", row, column)
        if minimum is not None:
            low = (values <= minimum) if strict else (values < minimum)
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            for row in self.rows(low & ~bad):
                self.problem(f"{values.iloc[row - 1]:g} must be {bound}", row, column)
        return values

    def choice(self, column: str, allowed: Sequence[str]) -> pd.Series:
        values = self.frame[column].astype(str).str.strip().str.lower()
        for row in self.rows(~values.isin(allowed)):
            self.problem(
                f"{values.iloc[row - 1]!r} is not one of: {', '.join(allowed)}", row, column
            )
        return values

    def raise_if_any(self) -> None:
        if self.problems:
            raise ImportFailed(self.problems)


def read_table(path: Path, options: ImportOptions, mapping: dict[str, str] | None = None) -> Table:
    """Read a CSV or Parquet file as strings, after checks on size and encoding."""
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
        if csv:
            frame = _read_csv(path)
        else:
            frame = pd.read_parquet(path).astype(str).replace({"nan": "", "None": "", "NaT": ""})
    except ImportFailed:
        raise
    except Exception as error:  # a parser's own message says what and where
        raise ImportFailed([Problem(name, f"cannot be read: {error}")]) from error
    frame.columns = [str(c).strip() for c in frame.columns]
    table = Table(name, frame, csv)
    _apply_mapping(table, mapping or {})
    if table.frame.empty:
        table.problem("the file has a header but no data rows")
    table.raise_if_any()
    return table


def _read_csv(path: Path) -> pd.DataFrame:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ImportFailed(
            [Problem(path.name, f"line {line}: the file is not UTF-8 text (byte {error.start})")]
        ) from error
    if not text.strip():
        raise ImportFailed([Problem(path.name, "the file is empty")])
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)


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
    frames, problems, warnings = [], [], []
    for path in paths:
        table = read_table(path, options, mapping)
        if "ticker" not in table.frame.columns:
            table.frame["ticker"] = Path(path).stem.upper()
        if not table.require(["date", *PRICE_COLUMNS]):
            problems += table.problems
            continue
        frame = pd.DataFrame({"date": table.dates("date"), "ticker": table.text("ticker")})
        for column in ("open", "high", "low", "close"):
            frame[column] = table.numbers(column, minimum=0, strict=True)
        frame["volume"] = table.numbers("volume", minimum=0)
        if "adj_close" in table.frame.columns:
            factor = table.numbers("adj_close", minimum=0, strict=True) / frame["close"]
            frame[["open", "high", "low", "close"]] = frame[["open", "high", "low", "close"]].mul(
                factor, axis=0
            )
        for row in table.rows(frame["high"] < frame["low"]):
            table.problem("high is below low", row, "high")
        duplicated = frame.duplicated(["date", "ticker"], keep=False) & frame["date"].notna()
        for row in table.rows(duplicated):
            day = frame["date"].iloc[row - 1].date()
            table.problem(
                f"duplicate (date, ticker) = ({day}, {frame['ticker'].iloc[row - 1]})", row, "date"
            )
        problems += table.problems
        frames.append(frame.assign(_file=table.name))
    if problems:
        raise ImportFailed(problems)
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
        dates = rows["date"].sort_values()
        gaps = dates.diff().dt.days
        for position in np.flatnonzero(gaps.to_numpy() > options.max_gap_days):
            warnings.append(
                f"{file}: {ticker} has no rows from {dates.iloc[position - 1].date()} to "
                f"{dates.iloc[position].date()} ({int(gaps.iloc[position])} days)"
            )
        if len(rows) < options.min_rows:
            problems.append(
                Problem(
                    file,
                    f"ticker {ticker} has {len(rows)} rows; at least "
                    f"{options.min_rows} are needed ({WARMUP_DAYS} days of feature warm-up "
                    f"+ the {max(options.horizons)}-day label horizon)",
                    column="ticker",
                )
            )
    if problems:
        raise ImportFailed(problems)
    prices = prices.drop(columns="_file").sort_values(["ticker", "date"], kind="stable")
    return prices.reset_index(drop=True), warnings


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
        frame["source"] = table.frame["source"].astype(str).str.strip().replace("", "unknown")
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
    for row in table.rows(out_of_range):
        table.problem(
            f"{frame['urgency'].iloc[row - 1]:g} is not an integer from 1 to 5", row, "urgency"
        )
    if "stance" in table.frame.columns:
        frame["stance"] = table.numbers("stance")
        for row in table.rows(~frame["stance"].isin([-1, 0, 1]) & np.isfinite(frame["stance"])):
            table.problem("stance must be -1, 0 or 1", row, "stance")
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
    for row in table.rows(positive):
        table.problem(f"{frame['series'].iloc[row - 1]} must be positive", row, "value")
    if "released" in table.frame.columns:
        frame["released"] = table.dates("released")
        for row in table.rows(frame["released"] < frame["date"]):
            table.problem("released before the date it describes", row, "released")
    duplicated = frame.duplicated(["date", "series"], keep=False)
    for row in table.rows(duplicated):
        table.problem("duplicate (date, series)", row, "date")
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
    problems: list[Problem] = []
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
            problems.extend(failure.problems)
    if problems:
        raise ImportFailed(problems)
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
