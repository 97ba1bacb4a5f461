"""Malformed price and interaction files end in a clear ImportFailed or a stored dataset.

Each test throws at least 1,000 generated files at the importer (dropped, renamed or repeated
columns, junk cells, NaN / inf / 1e308 / negative / empty values, negative Unix times, mixed
date formats and UTC offsets, truncated lines, junk bytes, other separators, duplicated rows,
header-only and empty files, BOMs, very long cells and 100 KB ids). A file must either fail
with ``ImportFailed`` naming it, or import; a file naming a column twice must fail naming
that column. Imported files are then stored through the real storage path (every one that
carries a harmful change, and a sample of those with benign changes only), which must
succeed; a store that fails must leave nothing behind. One user with a million items
imports, and its training is refused before it starts when it cannot fit.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from core.import_problems import ImportFailed
from core.market.config import DataConfig
from core.market.importers import ImportOptions, import_market
from core.recsys.data import INTERACTION_LABELS
from core.recsys.importers import import_recsys
from services.datasets import save_market_dataset
from storage.recsys import save_recsys_dataset
from storage.repository import count_rows, session_scope

pytestmark = pytest.mark.slow

FILES_PER_KIND = 1000
STORED_BENIGN_FILES = 20
"""Imported files with benign changes only that are stored, per kind (a market build takes
about 0.1 s; storing every such file would dominate the run and test little more)."""
PRICE_COLUMNS = {2, 3, 4, 5}
"""Positions of open, high, low and close in the generated price files."""
DATE_COLUMNS = {"date": "date", "user_id": "timestamp"}
"""The column a file's dates are in, by its first column."""
STORED_HARMFUL_PRICE_FILES = 60
"""Imported price files with harmful changes that are built and stored: the first 60 of the
240-270 that import (each build and store takes about 0.2 s; the import of all 1,000 files
is checked whatever the cap)."""
HORIZON_DAYS = 5
ROWS_PER_TICKER = 280
"""Past the 252-row feature warm-up plus the label horizon, so unharmed files import, and
so do some that lose a few rows."""

FUZZ_SETTINGS = settings(
    max_examples=FILES_PER_KIND,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

JUNK_CELL = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "1e308",
            "-1e308",
            "1e-300",
            "-1",
            "-5",
            "0",
            "1e16",
            "abc",
            '"',
            ",",
            ";",
            "\t",
            "x" * 5000,
            "u" * 100_000,
            "9" * 400,
            "NaT",
            "None",
            "null",
            "1,5",
            "1_000",
            "0x10",
            "\x00",
            "é€",
            "2020-02-30",
            "31/01/2020",
            "0001-01-01",
            "9999-12-31",
            "2012-01-03T00:00:00+01:00",
            "2012-01-02T23:00:00-05:00",
            "2012-01-03T00:00:00Z",
            "2012-01-03T00:00:00+25:00",
        ]
    ),
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

EDGE_NUMBER = st.sampled_from(
    ["1e308", "1e200", "1e15", "1e12", "5", "1e-6", "1e-7", "1e-300", "0", "-0", "5e-324"]
)
SCALE_EXPONENT = st.sampled_from([-330, -310, -300, -200, -8, -7, -1, 6, 10, 11, 13, 200, 310])
"""Powers of ten to scale every price by: some keep prices usable, most do not."""
OFFSETS = st.sampled_from(["Z", "+01:00", "-05:00", "+0530", "-04", " +02:00"])


def _cell_edit(columns: int) -> st.SearchStrategy:
    return st.tuples(st.just("cell"), st.integers(0, 10**6), st.integers(0, columns - 1), JUNK_CELL)


def _harmful_mutations(columns: int) -> st.SearchStrategy:
    return st.one_of(
        _cell_edit(columns),
        _cell_edit(columns),
        st.tuples(st.just("drop column"), st.integers(0, columns - 1)),
        st.tuples(st.just("rename column"), st.integers(0, columns - 1), JUNK_CELL),
        st.tuples(st.just("duplicate rows"), st.integers(0, 10**6), st.integers(1, 30)),
        st.tuples(st.just("drop rows"), st.integers(0, 10**6), st.integers(1, 60)),
        st.tuples(st.just("short row"), st.integers(0, 10**6), st.integers(0, columns - 1)),
        st.tuples(st.just("long row"), st.integers(0, 10**6), JUNK_CELL),
        st.tuples(st.just("same value"), st.integers(0, columns - 1), JUNK_CELL),
        st.tuples(st.just("same value"), st.integers(0, columns - 1), EDGE_NUMBER),
        st.tuples(st.just("same value"), st.integers(0, columns - 1), EDGE_NUMBER),
        st.tuples(st.just("scale prices"), SCALE_EXPONENT),
        st.tuples(st.just("scale prices"), SCALE_EXPONENT),
        st.tuples(st.just("header only")),
        st.tuples(st.just("duplicate column"), st.integers(0, columns - 1)),
    )


def _benign_mutations(columns: int) -> st.SearchStrategy:
    """Changes a careful importer accepts: they keep some generated files importable."""
    return st.one_of(
        st.tuples(st.just("offsets"), st.integers(0, 10**6), st.integers(1, 600), OFFSETS),
        st.tuples(st.just("shuffle"), st.integers(0, 2**32 - 1)),
        st.tuples(st.just("pad cells"), st.integers(0, columns - 1)),
        st.tuples(st.just("upper-case header"), st.integers(0, columns - 1)),
        st.tuples(st.just("extra column"), st.text(alphabet="abc xyz-", max_size=6)),
    )


BYTE_MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("junk bytes"), st.floats(0, 1), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("bom"), st.sampled_from([b"\xff\xfe", b"\xfe\xff"])),
    st.tuples(st.just("empty"), st.sampled_from([b"", b"\n", b"  \n\n", b"\xef\xbb\xbf"])),
)


def _file_strategy(columns: int) -> st.SearchStrategy:
    """About half the files carry harmful row changes, half harmful byte changes and half
    another separator; every file gets at least one benign change."""
    return st.fixed_dictionaries(
        {
            "benign": st.lists(_benign_mutations(columns), min_size=1, max_size=3),
            "harmful": st.one_of(
                st.just([]), st.lists(_harmful_mutations(columns), min_size=1, max_size=3)
            ),
            "bytes": st.one_of(st.just([]), st.lists(BYTE_MUTATIONS, min_size=1, max_size=2)),
            "separator": st.one_of(st.just(","), st.sampled_from([";", "\t", "|"])),
            "line_end": st.sampled_from(["\n", "\r\n", "\r"]),
            "quoted": st.booleans(),
            "utf8_bom": st.booleans(),
        }
    )


def _scaled(cell: str, exponent: int) -> str:
    try:
        return f"{float(cell) * 10.0**exponent:.6g}"
    except (ValueError, OverflowError):
        return cell


def _with_offset(stamp: str, offset: str) -> str:
    return f"{stamp}{offset}" if "T" in stamp else f"{stamp}T00:00:00{offset}"


def _mutated_rows(
    header: list[str], rows: list[list[str]], mutations: list, date_column: int
) -> list[list[str]]:
    header, rows = list(header), [list(row) for row in rows]
    for kind, *args in mutations:
        if not rows and kind not in ("drop column", "rename column", "duplicate column"):
            continue
        if kind == "cell":
            row, column, value = args
            cells = rows[row % len(rows)]
            if cells:
                cells[column % len(cells)] = value
        elif kind == "drop column" and args[0] < len(header):
            del header[args[0]]
            for cells in rows:
                del cells[args[0] : args[0] + 1]
        elif kind == "rename column" and args[0] < len(header):
            header[args[0]] = args[1]
        elif kind == "offsets":
            start, count, offset = args
            for cells in rows[start % len(rows) : start % len(rows) + count]:
                if date_column < len(cells):
                    cells[date_column] = _with_offset(cells[date_column], offset)
        elif kind == "duplicate rows":
            start, count = args
            rows += rows[start % len(rows) : start % len(rows) + count]
        elif kind == "drop rows":
            start, count = args
            del rows[start % len(rows) : start % len(rows) + count]
        elif kind == "short row":
            row, keep = args
            del rows[row % len(rows)][keep:]
        elif kind == "long row":
            rows[args[0] % len(rows)].append(args[1])
        elif kind == "same value":
            column, value = args
            for cells in rows:
                if column < len(cells):
                    cells[column] = value
        elif kind == "pad cells":
            for cells in rows:
                if args[0] < len(cells):
                    cells[args[0]] = f"  {cells[args[0]]} "
        elif kind == "upper-case header" and args[0] < len(header):
            header[args[0]] = header[args[0]].upper()
        elif kind == "extra column":
            header.append("note")
            for cells in rows:
                cells.append(args[0])
        elif kind == "scale prices" and "close" in header:
            for cells in rows:
                for column in PRICE_COLUMNS.intersection(range(len(cells))):
                    cells[column] = _scaled(cells[column], args[0])
        elif kind == "shuffle":
            order = np.random.default_rng(args[0]).permutation(len(rows))
            rows = [rows[i] for i in order]
        elif kind == "header only":
            rows = []
        elif kind == "duplicate column" and args[0] < len(header):
            header.append(header[args[0]])  # the copy holds 1,000 x the numbers
            for cells in rows:
                cells.append(_scaled(cells[args[0]], 3) if args[0] < len(cells) else "")
    return [header, *rows]


HEADER_CHANGES = {"drop column", "rename column", "upper-case header"}


def _named_twice(header: list[str], spec: dict) -> str | None:
    """The column a ``duplicate column`` change named twice, where no other change touched
    the header or the bytes (so the reader sees it as written)."""
    mutations = spec["benign"] + spec["harmful"]
    if spec["bytes"] or any(kind in HEADER_CHANGES for kind, *_ in mutations):
        return None
    copied = [args[0] for kind, *args in mutations if kind == "duplicate column"]
    return header[copied[0]] if copied else None


def _file_bytes(header: list[str], rows: list[list[str]], spec: dict) -> bytes:
    date_column = header.index(DATE_COLUMNS[header[0]])
    lines = _mutated_rows(header, rows, spec["benign"] + spec["harmful"], date_column)
    if spec["quoted"]:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=spec["separator"], lineterminator=spec["line_end"]).writerows(
            lines
        )
        text = buffer.getvalue()
    else:
        text = "".join(spec["separator"].join(cells) + spec["line_end"] for cells in lines)
    data = (b"\xef\xbb\xbf" if spec["utf8_bom"] else b"") + text.encode(
        "utf-8", errors="surrogatepass"
    )
    for kind, *args in spec["bytes"]:
        if kind == "truncate":
            data = data[: int(len(data) * args[0])]
        elif kind == "junk bytes":
            at = int(len(data) * args[0])
            data = data[:at] + args[1] + data[at:]
        elif kind == "bom":
            data = args[0] + data
        elif kind == "empty":
            data = args[0]
    return data


def _harmful(spec: dict) -> bool:
    return bool(spec["harmful"] or spec["bytes"] or spec["separator"] != ",")


def _price_rows() -> tuple[list[str], list[list[str]]]:
    rng = np.random.default_rng(7)
    header = ["date", "ticker", "open", "high", "low", "close", "volume"]
    dates = pd.bdate_range("2012-01-02", periods=ROWS_PER_TICKER).strftime("%Y-%m-%d")
    rows = []
    for ticker in ("AAA", "BBB"):
        close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, ROWS_PER_TICKER)))
        open_ = close * np.exp(rng.normal(0, 0.004, ROWS_PER_TICKER))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, ROWS_PER_TICKER)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, ROWS_PER_TICKER)))
        volume = rng.integers(100_000, 2_000_000, ROWS_PER_TICKER)
        for values in zip(dates, open_, high, low, close, volume, strict=True):
            rows.append([values[0], ticker, *(f"{v:.6g}" for v in values[1:])])
    return header, rows


def _interaction_rows() -> tuple[list[str], list[list[str]]]:
    rng = np.random.default_rng(3)
    kinds = list(INTERACTION_LABELS)
    header = ["user_id", "item_id", "interaction", "timestamp"]
    start = pd.Timestamp("2024-01-01 08:00")
    rows = [
        [
            f"u{rng.integers(12)}",
            f"s{rng.integers(10)}",
            kinds[rng.integers(len(kinds))],
            (start + pd.Timedelta(minutes=37 * i)).strftime("%Y-%m-%dT%H:%M:%S"),
        ]
        for i in range(60)
    ]
    return header, rows


def _stored_state(engine: Engine) -> tuple[int, set[str]]:
    """Registered datasets, and the tables holding dataset rows."""
    with session_scope(engine) as session:
        datasets = count_rows(session=session)["datasets"]
        tables = session.connection().exec_driver_sql(
            "SELECT table_name FROM information_schema.tables "
            "WHERE starts_with(table_name, 'dataset_')"
        )
        return datasets, {name for (name,) in tables}


def _store_or_prove_nothing_partial(
    engine: Engine, store: Callable[[], tuple[object, bool]], tables: Callable[[object], set]
) -> str | None:
    """Store; on success check the rows' tables exist, on failure that nothing was left.
    Returns the failure's description, or None when stored."""
    before = _stored_state(engine)
    try:
        dataset, reused = store()
    except Exception as error:  # any failure counts; it must leave the database as it was
        assert _stored_state(engine) == before, f"a failed store left data behind: {error!r}"
        return f"{type(error).__name__}: {error}"
    datasets, stored_tables = _stored_state(engine)
    assert tables(dataset) <= stored_tables
    assert datasets == before[0] + (0 if reused else 1)
    return None


def test_fuzzed_price_files_end_in_a_clear_error_or_a_stored_dataset(
    engine: Engine, tmp_path: Path
) -> None:
    header, rows = _price_rows()
    path = tmp_path / "prices.csv"
    options = ImportOptions(horizons=(HORIZON_DAYS,))
    config = DataConfig(horizons=[HORIZON_DAYS])
    tally: Counter[str] = Counter()
    store_failures: list[str] = []

    @FUZZ_SETTINGS
    @given(spec=_file_strategy(len(header)))
    def import_one(spec: dict) -> None:
        path.write_bytes(_file_bytes(header, rows, spec))
        tally["files"] += 1
        twice = _named_twice(header, spec)
        try:
            data, _ = import_market([path], options=options)
        except ImportFailed as failure:
            assert failure.problems, "a failure lists its problems"
            assert all(p.file == "prices.csv" for p in failure.problems), failure
            assert "prices.csv" in str(failure)
            if twice is not None:
                # named twice, or refused for its width before its names are read
                assert f"column {twice!r}: the header names this column" in str(
                    failure
                ) or "columns; the limit is" in str(failure), failure
                tally["named twice, refused"] += 1
            tally["refused"] += 1
            return
        assert twice is None, f"a file naming {twice!r} twice was imported"
        tally["imported"] += 1
        prices = data.prices
        values = prices[["open", "high", "low", "close", "volume"]].to_numpy()
        assert np.isfinite(values).all() and (values[:, :4] > 0).all()
        assert not prices.duplicated(["date", "ticker"]).any()
        assert prices.groupby("ticker").size().min() >= options.min_rows
        kind = "harmful stored" if _harmful(spec) else "benign stored"
        limit = STORED_HARMFUL_PRICE_FILES if _harmful(spec) else STORED_BENIGN_FILES
        if tally[kind] >= limit:
            return
        tally[kind] += 1
        store_failure = _store_or_prove_nothing_partial(
            engine,
            lambda: save_market_dataset(
                engine=engine,
                name=f"fuzz{tally['files']}",
                data=data,
                config=config,
                description="fuzz",
            ),
            lambda dataset: {dataset.table_name},
        )
        tally["stored" if store_failure is None else "store failed"] += 1
        if store_failure is not None:
            store_failures.append(store_failure)

    import_one()
    print(f"price files: {dict(tally)}")
    assert tally["files"] >= FILES_PER_KIND
    assert tally["imported"] >= 50, "enough generated files import to test that path"
    assert tally["stored"] >= 10
    assert store_failures == [], "every file that imports must build and store"
    assert tally["named twice, refused"] >= 10


def test_fuzzed_interaction_files_end_in_a_clear_error_or_a_stored_dataset(
    engine: Engine, tmp_path: Path
) -> None:
    header, rows = _interaction_rows()
    path = tmp_path / "events.csv"
    tally: Counter[str] = Counter()
    store_failures: list[str] = []

    @FUZZ_SETTINGS
    @given(spec=_file_strategy(len(header)))
    def import_one(spec: dict) -> None:
        path.write_bytes(_file_bytes(header, rows, spec))
        tally["files"] += 1
        twice = _named_twice(header, spec)
        try:
            data = import_recsys(path)
        except ImportFailed as failure:
            assert failure.problems, "a failure lists its problems"
            assert all(p.file == "events.csv" for p in failure.problems), failure
            assert "events.csv" in str(failure)
            if twice is not None:
                # named twice, or refused for its width before its names are read
                assert f"column {twice!r}: the header names this column" in str(
                    failure
                ) or "columns; the limit is" in str(failure), failure
                tally["named twice, refused"] += 1
            tally["refused"] += 1
            return
        assert twice is None, f"a file naming {twice!r} twice was imported"
        tally["imported"] += 1
        interactions = data.interactions
        assert interactions["timestamp"].notna().all()
        if not data.recipe["timestamps"]:  # the timestamp column dropped: one instant
            assert (interactions["timestamp"] == pd.Timestamp("1970-01-01")).all()
            tally["without timestamps"] += 1
        elif "Unix" in data.recipe["timestamp_format"]:
            assert (interactions["timestamp"] >= pd.Timestamp("1970-01-01")).all(), "negative"
        assert interactions["interaction"].isin(list(INTERACTION_LABELS)).all()
        assert not interactions.duplicated(["user_id", "item_id", "timestamp"]).any()
        if not _harmful(spec):
            if tally["benign stored"] >= STORED_BENIGN_FILES:
                return
            tally["benign stored"] += 1
        store_failure = _store_or_prove_nothing_partial(
            engine,
            lambda: save_recsys_dataset(
                engine=engine, name=f"events{tally['files']}", data=data, description="fuzz"
            ),
            lambda dataset: {
                f"{dataset.table_name}_{part}" for part in ("users", "items", "interactions")
            },
        )
        tally["stored" if store_failure is None else "store failed"] += 1
        if store_failure is not None:
            store_failures.append(store_failure)

    import_one()
    print(f"interaction files: {dict(tally)}")
    assert tally["files"] >= FILES_PER_KIND
    assert tally["imported"] >= 50, "enough generated files import to test that path"
    assert tally["stored"] >= 10
    assert store_failures == [], "every file that imports must store"
    # 8 of the 1,000 files since files without a timestamp column import (issue 38): the
    # derandomised draws follow what the earlier examples did
    assert tally["named twice, refused"] >= 5
    assert tally["without timestamps"] >= 5, "a log without timestamps imports and stores"


def test_one_user_with_a_million_items_imports_and_its_training_is_refused_up_front(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 41, item 8: the import works (8.8 s, 715 MB on the probe's machine); training
    then grew past 4 GB solving the id tables. With 4 GB left it is refused before any work."""
    import core.recsys.training as training_module
    from core.recsys.training import train_recommender
    from core.trainer import TrainingError

    items = 1_000_000
    path = tmp_path / "one_user.csv"
    stamps = 1_600_000_000 + np.arange(items)
    lines = "".join(f"u1,i{i},{stamp}\n" for i, stamp in enumerate(stamps))
    path.write_text("user_id,item_id,timestamp\n" + lines)
    data = import_recsys(path)
    assert (len(data.users), len(data.items), len(data.interactions)) == (1, items, items)
    stored = _store_or_prove_nothing_partial(
        engine,
        lambda: save_recsys_dataset(engine=engine, name="wide", data=data, description="fuzz"),
        lambda dataset: {f"{dataset.table_name}_{part}" for part in ("users", "items")},
    )
    assert stored is None, stored
    monkeypatch.setattr(training_module, "available_memory", lambda: 4 * 1024**3)
    with pytest.raises(TrainingError, match=r"1,000,000 items needs about 15\.3 GB"):
        train_recommender(data)
