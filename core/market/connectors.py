"""Optional downloads: daily prices from Yahoo's chart endpoint, macro series from FRED.

Off by default. ``http_fetch``, the only function here that opens a connection, refuses
unless the environment sets ``TRENDLAB_ALLOW_DOWNLOADS=1``; the CLI's ``trendlab data
download`` is the only caller that passes it. Every response is cached on disk under
``cache_dir``, keyed by the request's URL, and reused when present (so a cached request needs
no network and no switch). The fetch function is injectable: tests feed it responses recorded
in ``tests/core/market/recorded/``.

A download is written as an ordinary import file (long prices CSV, or macro CSV with
date, series, value) and read back through the importers' own validation, so it yields
exactly the frame ``core.market.importers.import_market`` reads from that file.

Yahoo's chart endpoint is unofficial and may refuse or change; FRED's fredgraph CSV needs no
key. FRED serves the latest vintage of a series, not the value first printed (CPI is revised
with its seasonal factors), a small look-ahead the release lags do not remove.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.exports import write_spreadsheet_csv
from core.market.context import MACRO_SERIES
from core.market.context_files import read_macro_series
from core.market.importers import ImportOptions, read_prices

ALLOW_ENV = "TRENDLAB_ALLOW_DOWNLOADS"
YAHOO_CHART_URL = "https://query1.finance.yahoo.com/v8/finance/chart/{symbol}"
FRED_CSV_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv"
FRED_SERIES: dict[str, str] = {
    "cpi": "CPILFESL",
    "aaa": "AAA",
    "baa": "BAA",
    "oil": "DCOILWTICO",
    "vix": "VIXCLS",
}
"""FRED series id of each Trendlab macro series (``core.market.context.MACRO_SERIES``); core
CPI, as the bundled data uses."""
TIMEOUT_S = 30
USER_AGENT = "Mozilla/5.0 (compatible; trendlab)"  # Yahoo answers 429 to an empty agent

Fetch = Callable[[str], bytes]
"""Returns the body of a GET on the URL, or raises ``DownloadFailed``."""


class DownloadsDisabled(RuntimeError):
    """A download was needed but downloads are off."""


class DownloadFailed(RuntimeError):
    """A request failed or its response could not be read; the message says which."""


@dataclass(frozen=True)
class Download:
    """A download written as an import file and read back through the importers."""

    frame: pd.DataFrame
    """What ``import_market`` reads from ``path``: long prices, or macro observations."""
    path: Path
    notes: list[str]
    """One line per request: how many rows, and whether it came from the cache or the URL."""
    warnings: list[str] = field(default_factory=list)
    """The importers' warnings (gaps, unsorted rows)."""


def downloads_allowed() -> bool:
    return os.environ.get(ALLOW_ENV) == "1"


def http_fetch(url: str) -> bytes:
    """GET ``url``, only when ``TRENDLAB_ALLOW_DOWNLOADS=1``; otherwise ``DownloadsDisabled``."""
    if not downloads_allowed():
        raise DownloadsDisabled(
            f"Downloads are off. Set {ALLOW_ENV}=1 in the environment to allow this request "
            f"({url}); responses are then cached and reused."
        )
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise DownloadFailed(f"{url}: {err}") from None


def cache_path(cache_dir: Path, source: str, label: str, url: str, suffix: str) -> Path:
    """Where the response to ``url`` is cached: readable label, then the URL's hash."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return cache_dir / source / f"{safe}-{digest}.{suffix}"


def _cached(
    url: str, path: Path, fetch: Fetch, parse: Callable[[bytes], pd.DataFrame]
) -> tuple[pd.DataFrame, bool]:
    """The parsed response, from the cache when present; a fresh response is cached only once
    it parses, so an error page is never reused."""
    if path.exists():
        return parse(path.read_bytes()), True
    body = fetch(url)
    frame = parse(body)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_bytes(body)
    partial.replace(path)
    return frame, False


def _dates(start: str, end: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    if last < first:
        raise DownloadFailed(f"the end {end} is before the start {start}")
    return first, last


def yahoo_chart_url(symbol: str, start: str, end: str) -> str:
    """Daily bars of ``symbol`` from ``start`` to ``end`` (inclusive), with adjusted closes."""
    first, last = _dates(start, end)
    query = {
        "period1": int(first.tz_localize("UTC").timestamp()),
        "period2": int((last + pd.Timedelta(days=1)).tz_localize("UTC").timestamp()),
        "interval": "1d",
        "events": "div,split",
        "includeAdjustedClose": "true",
    }
    return (
        YAHOO_CHART_URL.format(symbol=urllib.parse.quote(symbol, safe=""))
        + "?"
        + urllib.parse.urlencode(query)
    )


def parse_yahoo_chart(body: bytes, symbol: str) -> pd.DataFrame:
    """A chart response as long prices (date, ticker, open, high, low, close, volume,
    adj_close), dated by the exchange's own calendar day; bars with a missing value (Yahoo
    sends nulls for some days) are dropped."""
    try:
        chart = json.loads(body)["chart"]
    except (ValueError, KeyError, TypeError):
        raise DownloadFailed(f"{symbol}: the response is not a Yahoo chart") from None
    if chart.get("error") or not chart.get("result"):
        error = chart.get("error") or {}
        detail = error.get("description") or error.get("code") or "no data"
        raise DownloadFailed(f"{symbol}: Yahoo answered: {detail}")
    result = chart["result"][0]
    meta = result.get("meta", {})
    stamps = result.get("timestamp") or []
    quote = result["indicators"]["quote"][0]
    columns = {c: quote.get(c) or [None] * len(stamps) for c in ("open", "high", "low", "close")}
    columns["volume"] = quote.get("volume") or [None] * len(stamps)
    adjusted = result["indicators"].get("adjclose")
    if adjusted:
        columns["adj_close"] = adjusted[0].get("adjclose") or [None] * len(stamps)
    frame = pd.DataFrame({c: pd.array(v, dtype="Float64") for c, v in columns.items()})
    utc = pd.to_datetime(pd.Series(stamps, dtype="int64"), unit="s", utc=True)
    zone = meta.get("exchangeTimezoneName")
    local = utc.dt.tz_convert(zone) if zone else utc + pd.Timedelta(seconds=meta["gmtoffset"])
    frame.insert(0, "date", local.dt.strftime("%Y-%m-%d"))
    frame.insert(1, "ticker", str(meta.get("symbol") or symbol))
    return frame.dropna().astype({c: float for c in columns}).reset_index(drop=True)


def fred_csv_url(series_id: str, start: str, end: str) -> str:
    first, last = _dates(start, end)
    query = {"id": series_id, "cosd": first.date().isoformat(), "coed": last.date().isoformat()}
    return f"{FRED_CSV_URL}?{urllib.parse.urlencode(query)}"


def parse_fred_csv(body: bytes, series_id: str) -> pd.DataFrame:
    """A fredgraph CSV (``observation_date`` or ``DATE``, then the series id) as (date,
    value); missing observations (``.`` or empty) are dropped."""
    try:
        text = body.decode("utf-8-sig")
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        raise DownloadFailed(f"{series_id}: the response is not a FRED CSV") from None
    if len(table.columns) != 2 or table.columns[1] != series_id:
        raise DownloadFailed(
            f"{series_id}: the response is not a FRED CSV of {series_id} "
            f"(columns {', '.join(map(str, table.columns[:4]))})"
        )
    values = table.iloc[:, 1].str.strip()
    kept = ~values.isin(["", "."])
    return pd.DataFrame({"date": table.iloc[:, 0][kept].str.strip(), "value": values[kept]})


def _in_range(frame: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    dates = pd.to_datetime(frame["date"], errors="coerce")
    first, last = _dates(start, end)
    return frame[dates.isna() | dates.between(first, last)]  # bad dates: validation names them


def download_prices(
    tickers: Sequence[str],
    start: str,
    end: str,
    *,
    out: Path,
    cache_dir: Path,
    fetch: Fetch = http_fetch,
    options: ImportOptions | None = None,
) -> Download:
    """Daily prices of ``tickers`` written to ``out`` (a long prices CSV with adj_close) and
    read back through ``read_prices``, whose ``ImportFailed`` says what does not pass."""
    frames, notes = [], []
    for symbol in tickers:
        url = yahoo_chart_url(symbol, start, end)
        path = cache_path(cache_dir, "yahoo", f"{symbol}_{start}_{end}", url, "json")
        frame, cached = _cached(url, path, fetch, lambda body, s=symbol: parse_yahoo_chart(body, s))
        frame = _in_range(frame, start, end)
        notes.append(f"{symbol}: {len(frame)} daily bars {'from the cache' if cached else url}")
        frames.append(frame)
    write_spreadsheet_csv(pd.concat(frames, ignore_index=True), out)
    prices, warnings = read_prices([out], options=options)
    return Download(prices, out, notes, warnings)


def download_macro(
    series: Sequence[str],
    start: str,
    end: str,
    *,
    out: Path,
    cache_dir: Path,
    fetch: Fetch = http_fetch,
) -> Download:
    """FRED observations of Trendlab macro ``series`` (names from ``FRED_SERIES``) written to
    ``out`` as a macro CSV (date, series, value) and read back through
    ``read_macro_series``. No ``released`` column: each series' release lag applies."""
    unknown = [name for name in series if name not in FRED_SERIES]
    if unknown:
        raise DownloadFailed(
            f"unknown macro series {', '.join(unknown)}; known: {', '.join(MACRO_SERIES)}"
        )
    frames, notes = [], []
    for name in series:
        series_id = FRED_SERIES[name]
        url = fred_csv_url(series_id, start, end)
        path = cache_path(cache_dir, "fred", f"{series_id}_{start}_{end}", url, "csv")
        frame, cached = _cached(url, path, fetch, lambda body, i=series_id: parse_fred_csv(body, i))
        frame = _in_range(frame, start, end).assign(series=name)[["date", "series", "value"]]
        notes.append(
            f"{name} ({series_id}): {len(frame)} observations {'from the cache' if cached else url}"
        )
        frames.append(frame)
    write_spreadsheet_csv(pd.concat(frames, ignore_index=True), out)
    return Download(read_macro_series(out), out, notes)
