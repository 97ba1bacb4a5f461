"""Generated uploads through the Data page's import (``import_market_uploads``, then
``store_market_dataset`` as its save does): wide, tall and many-celled tables, gzip (a bomb
included), mixed encodings, odd separators and a column named twice. Each ends in a refusal
naming the file and the limit, line or column at fault, or in a stored dataset; each stays
within a time and memory bound, and leaves nothing in the uploads folder (issue 23).

The per-case bounds are safety bounds against hangs and unbounded reads, far above what a case
needs; speed targets live in bench/. tests/core/market/test_import_fuzz.py fuzzes the cells
and rows of price files; this fuzzes the shape, compression and bytes of whole uploads.
"""

from __future__ import annotations

import gzip
import resource
import time
import tracemalloc
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.import_problems import ImportFailed
from core.market.config import DataConfig
from core.table_files import ReadOptions
from services import catalog
from services.datasets import import_market_uploads, store_market_dataset
from storage import DataHome, open_engine

pytestmark = pytest.mark.slow

SECONDS_PER_CASE = 10.0
"""Safety bound on one case, import and store: a hang or a full read of a bomb breaks it."""
TRACED_MB_PER_CASE = 200
"""Bound on a case's peak of Python and NumPy allocations (tracemalloc)."""
RSS_GROWTH_MB_PER_CASE = 500
"""Bound on how far a case raises the process's peak resident memory (Arrow's buffers and
other native memory included); a bomb decoded whole would pass it."""

LIMITS = ReadOptions()
"""The limits the Data page reads with."""
BOMB_DECODED_BYTES = 1024**3
"""What the gzip bomb unpacks to: a 1 MB upload, 20 times the content limit."""
ROWS_PER_TICKER = 320
"""Past the 252-row feature warm-up plus the 30-day label horizon."""
SEPARATORS = [",", ";", "\t", "|"]
ODD_SEPARATORS = [" ", ":", "#"]
SHAPES = ["fits", "wide", "tall", "many cells", "gzip bomb", "close twice"]
"""``close twice``: a second ``close`` column, 1,000 x the first (issue 41, item 9)."""
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "utf-16", "invalid bytes", "mixed"]
"""``mixed``: UTF-8, with one line in Latin-1."""
NOT_UTF8 = {"latin-1", "utf-16", "invalid bytes", "mixed"}
COMPANY = "Société Générale"
"""A cell only UTF-8 reads as written."""


@dataclass(frozen=True)
class Upload:
    shape: str
    encoding: str
    separator: str
    gzipped: bool


@pytest.fixture
def backend() -> str:
    """DuckDB only: this fuzzes reading uploads; storing runs on both databases in
    tests/storage."""
    return "duckdb"


def _price_lines() -> list[list[str]]:
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2016-01-04", periods=ROWS_PER_TICKER).strftime("%Y-%m-%d")
    lines = [["date", "ticker", "open", "high", "low", "close", "volume", "company"]]
    for ticker in ("AAA", "BBB"):
        close = 40 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, ROWS_PER_TICKER)))
        open_ = close * np.exp(rng.normal(0, 0.004, ROWS_PER_TICKER))
        high = np.maximum(open_, close) * 1.01
        low = np.minimum(open_, close) * 0.99
        volume = rng.integers(100_000, 2_000_000, ROWS_PER_TICKER)
        for day, *values in zip(dates, open_, high, low, close, volume, strict=True):
            lines.append([day, ticker, *(f"{v:.6g}" for v in values), COMPANY])
    return lines


@cache
def _bomb() -> bytes:
    """A header line and then zeros, compressed a megabyte at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    parts = [packer.compress(b"date,ticker,open,high,low,close,volume\n")]
    zeros = b"0" * 1024**2
    parts += [packer.compress(zeros) for _ in range(BOMB_DECODED_BYTES // len(zeros))]
    return b"".join([*parts, packer.flush()])


def _text(upload: Upload) -> str:
    sep = upload.separator
    if upload.shape == "wide":
        header = sep.join(f"c{i}" for i in range(LIMITS.max_columns + 1))
        return header + "\n" + sep.join(["1"] * (LIMITS.max_columns + 1)) + "\n"
    if upload.shape == "tall":
        return "date" + sep + "close\n" + "x\n" * (LIMITS.max_rows + 1)
    if upload.shape == "many cells":
        columns = LIMITS.max_columns
        rows = LIMITS.max_cells // columns + 1
        return (
            sep.join(f"c{i}" for i in range(columns)) + "\n" + (sep * (columns - 1) + "\n") * rows
        )
    lines = _price_lines()
    if upload.shape == "close twice":
        close = lines[0].index("close")
        lines = [
            [*lines[0], "close"],
            *([*cells, f"{float(cells[close]) * 1000:.6g}"] for cells in lines[1:]),
        ]
    return "".join(sep.join(cells) + "\n" for cells in lines)


def _content(upload: Upload) -> bytes:
    if upload.shape == "gzip bomb":
        return _bomb()
    text = _text(upload)
    if upload.encoding == "utf-16":
        data = text.encode("utf-16")  # with its byte-order mark
    elif upload.encoding == "latin-1":
        data = text.encode("latin-1")
    elif upload.encoding == "utf-8-sig":
        data = text.encode("utf-8-sig")
    else:
        data = text.encode("utf-8")
    middle = data.find(b"\n", len(data) // 2) + 1
    if upload.encoding == "invalid bytes":
        data = data[:middle] + b"\xff\xfe\xc3" + data[middle:]
    elif upload.encoding == "mixed":
        data = data[:middle] + f"x{upload.separator}{COMPANY}\n".encode("latin-1") + data[middle:]
    return gzip.compress(data, compresslevel=1) if upload.gzipped else data


def _expected(upload: Upload) -> str | None:
    """What a refusal must say, in the order the reader checks; None: the upload stores."""
    if upload.shape == "gzip bomb":
        return "unpacks to more than 50 MB"
    if upload.shape in ("wide", "tall", "many cells") and upload.separator in SEPARATORS:
        return {"wide": "columns; the limit is", "tall": "rows; the limit is"}.get(
            upload.shape, "cells"
        )
    if upload.shape in ("wide", "tall", "many cells"):
        return ""  # one column to the sniffer: a refusal, whichever check comes first
    twice = upload.shape == "close twice" and upload.separator in SEPARATORS
    if twice and upload.encoding != "utf-16":  # the header line is read before the cells
        return "column 'close': the header names this column twice (columns 6, 9)"
    if upload.encoding in NOT_UTF8:
        return "the file is not UTF-8 text"
    if upload.separator not in SEPARATORS:
        return "missing column(s) date, open, high, low, close, volume"
    return None


UPLOADS = st.builds(
    Upload,
    shape=st.sampled_from(SHAPES),
    encoding=st.sampled_from(ENCODINGS),
    separator=st.one_of(st.sampled_from(SEPARATORS), st.sampled_from(ODD_SEPARATORS)),
    gzipped=st.booleans(),
)
EXAMPLES = [
    Upload("fits", "utf-8", ",", False),
    Upload("fits", "utf-8-sig", ";", True),
    Upload("fits", "latin-1", ",", False),
    Upload("fits", "utf-16", "\t", False),
    Upload("fits", "invalid bytes", "|", True),
    Upload("fits", "mixed", ",", False),
    Upload("fits", "utf-8", " ", False),
    Upload("wide", "utf-8", ",", False),
    Upload("tall", "utf-16", ";", True),
    Upload("tall", "utf-8", ",", False),
    Upload("many cells", "utf-8", ",", True),
    Upload("gzip bomb", "utf-8", ",", True),
    Upload("close twice", "utf-8", ",", False),
    Upload("close twice", "latin-1", ";", True),
    Upload("close twice", "utf-16", "\t", False),
]
"""One of each kind, whatever the generator draws."""


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def test_generated_uploads_end_in_a_clear_refusal_or_a_stored_dataset(
    data_home: DataHome,
) -> None:
    engine = open_engine(data_home.database_url)
    tally: Counter[str] = Counter()
    worst: Counter[str] = Counter()
    _bomb()  # built once, outside the first case's bounds
    warm_up, _ = import_market_uploads(
        home=data_home, prices=[("warm-up.csv", _content(EXAMPLES[0]))]
    )
    store_market_dataset(  # the first import and build load modules and data: not a case's cost
        engine=engine, name="warm-up", data=warm_up, config=DataConfig(), description="fuzz"
    )

    def one(upload: Upload) -> None:
        content = _content(upload)
        assert len(content) < 50 * 1024**2, "within the dashboard's upload limit"
        stored_before = len(catalog.datasets(engine=engine))
        rss_before = _peak_rss_mb()
        tracemalloc.start()
        started = time.perf_counter()
        try:
            data, _ = import_market_uploads(home=data_home, prices=[("prices.csv", content)])
        except ImportFailed as failure:
            outcome: ImportFailed | None = failure
        else:
            outcome = None
            dataset, reused = store_market_dataset(
                engine=engine,
                name=f"upload{tally['cases']}",
                data=data,
                config=DataConfig(),
                description="fuzz",
            )
        seconds = time.perf_counter() - started
        traced_mb = tracemalloc.get_traced_memory()[1] / 1024**2
        tracemalloc.stop()
        tally["cases"] += 1
        tally[upload.shape] += 1
        tally[upload.encoding] += 1
        assert list(data_home.uploads.iterdir()) == [], f"{upload}: the upload is removed"
        assert seconds < SECONDS_PER_CASE, f"{upload}: {seconds:.1f} s"
        assert traced_mb < TRACED_MB_PER_CASE, f"{upload}: {traced_mb:.0f} MB traced"
        rss_growth = _peak_rss_mb() - rss_before
        assert rss_growth < RSS_GROWTH_MB_PER_CASE, f"{upload}: peak RSS +{rss_growth:.0f} MB"
        for measure, value in (("s", seconds), ("traced MB", traced_mb), ("RSS MB", rss_growth)):
            worst[measure] = max(worst[measure], round(value, 2))
        expected = _expected(upload)
        if outcome is None:
            assert expected is None, f"{upload} was stored; expected a refusal: {expected}"
            assert dataset.row_count > 0
            added = 0 if reused else 1  # the same bytes again: the stored build is reused
            assert len(catalog.datasets(engine=engine)) == stored_before + added
            tally["stored"] += 1
            return
        assert expected is not None, f"{upload} was refused: {outcome}"
        assert outcome.problems and all(p.file == "prices.csv" for p in outcome.problems)
        assert "prices.csv" in str(outcome) and expected in str(outcome), f"{upload}: {outcome}"
        if expected.startswith("the file is not UTF-8"):
            assert "line " in str(outcome), f"{upload}: the line is named: {outcome}"
        assert len(catalog.datasets(engine=engine)) == stored_before, "a refusal stores nothing"
        tally["refused"] += 1

    check = given(upload=UPLOADS)(one)
    for upload in EXAMPLES:
        check = example(upload=upload)(check)
    settings(
        max_examples=12,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )(check)()
    engine.dispose()
    print(f"uploads: {dict(tally)}; worst case: {dict(worst)}")
    assert tally["cases"] >= len(EXAMPLES) + 1, "generated cases ran besides the examples"
    assert all(tally[kind] for kind in SHAPES + ENCODINGS), tally
    assert tally["stored"] >= 2 and tally["refused"] >= len(EXAMPLES) - 2, tally
