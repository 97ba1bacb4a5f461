"""Upload limits read before parsing (issue 23, items 3 and 4): a CSV's columns from its header
line, its rows from its line count, a Parquet's from its metadata; a Parquet's decoded text from
its metadata and string dictionaries (issue 41, item 2)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.import_problems import ImportFailed
from core.table_files import ReadOptions
from core.user_tables import read_table


def _refused(path: Path, options: ReadOptions, monkeypatch: pytest.MonkeyPatch) -> str:
    """The refusal, with the parsers switched off: a limit must hold before any parse."""

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was parsed before its limits were checked")

    monkeypatch.setattr(pd, "read_csv", no_parse)
    monkeypatch.setattr(pd, "read_parquet", no_parse)
    with pytest.raises(ImportFailed) as caught:
        read_table(path, options)
    return str(caught.value)


def test_a_csv_wider_than_the_column_limit_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(5000)) + "\n" + ",".join(["1"] * 5000) + "\n")
    message = _refused(path, ReadOptions(max_columns=1000), monkeypatch)
    assert "5000 columns" in message and "1000" in message


def test_a_gzip_csv_longer_than_the_row_limit_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tall.csv.gz"
    path.write_bytes(gzip.compress(b"user_id,item_id\n" + b"1,2\n" * 3000))
    message = _refused(path, ReadOptions(max_rows=1000), monkeypatch)
    assert "3000 rows" in message and "1000" in message


def test_a_compressed_parquet_of_many_rows_is_refused_from_its_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tall.parquet"
    frame = pd.DataFrame({"user_id": ["u"] * 400_000, "item_id": ["i"] * 400_000})
    frame.to_parquet(path, compression="zstd")
    assert path.stat().st_size < 100_000, "small on disk: only the file size was checked"
    message = _refused(path, ReadOptions(max_rows=100_000), monkeypatch)
    assert "400000 rows" in message and "100000" in message


def test_a_parquet_of_too_many_cells_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cells.parquet"
    pd.DataFrame({f"c{i}": [1] * 2000 for i in range(20)}).to_parquet(path)
    message = _refused(path, ReadOptions(max_cells=10_000), monkeypatch)
    assert "40000 cells" in message


def test_files_within_the_limits_are_read(tmp_path: Path) -> None:
    csv = tmp_path / "ok.csv"
    csv.write_text("user_id,item_id\n1,2\n3,4\n")
    parquet = tmp_path / "ok.parquet"
    pd.DataFrame({"user_id": ["1", "3"], "item_id": ["2", "4"]}).to_parquet(parquet)
    options = ReadOptions(max_columns=2, max_rows=2, max_cells=4)
    for path in (csv, parquet):
        assert read_table(path, options).frame.to_dict("list") == {
            "user_id": ["1", "3"],
            "item_id": ["2", "4"],
        }


def _repeated_strings_parquet(path: Path, rows: int, columns: list[str], width: int) -> Path:
    """A Parquet of ``rows`` copies of one ``width``-character string in each column,
    dictionary-encoded and compressed: a few hundred kB that decode to gigabytes."""
    indices = pa.array(np.zeros(rows, dtype=np.int32))
    repeated = pa.DictionaryArray.from_arrays(indices, pa.array(["x" * width]))
    pq.write_table(pa.table({c: repeated for c in columns}), path, compression="zstd")
    return path


def test_a_parquet_whose_repeated_strings_decode_past_the_text_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 41, item 2: the decoded size is counted from the string dictionaries (indices
    only) before any cell is built."""
    path = _repeated_strings_parquet(tmp_path / "bomb.parquet", 200_000, ["a", "b"], 300)
    assert path.stat().st_size < 100_000
    message = _refused(path, ReadOptions(max_text_bytes=50 * 1024**2), monkeypatch)
    assert "more than 50 MB of text once decoded" in message


def test_a_parquet_of_plain_compressed_strings_past_the_text_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "plain.parquet"
    texts = pa.array([f"{'y' * 290}{i:010d}" for i in range(100_000)])
    pq.write_table(pa.table({"a": texts}), path, compression="zstd", use_dictionary=False)
    assert path.stat().st_size < 2 * 1024**2
    message = _refused(path, ReadOptions(max_text_bytes=10 * 1024**2), monkeypatch)
    assert "more than 10 MB of text once decoded" in message


def test_a_parquet_of_nested_values_is_refused_naming_the_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"user_id": ["u"], "genres": [["a", "b"]]}), path)
    message = _refused(path, ReadOptions(), monkeypatch)
    assert "'genres'" in message and "one plain value per cell" in message


def test_strings_within_the_text_limit_are_read(tmp_path: Path) -> None:
    path = _repeated_strings_parquet(tmp_path / "ok.parquet", 1_000, ["a"], 300)
    assert read_table(path, ReadOptions(max_text_bytes=300_000)).frame["a"].iloc[-1] == "x" * 300
    with pytest.raises(ImportFailed, match="text once decoded"):
        read_table(path, ReadOptions(max_text_bytes=299_999))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("quoted.csv", b'"date","close","close"\n2024-01-02,1,1000\n'),
        ("spaced.csv", b"date, close ,close\n2024-01-02,1,1000\n"),
        ("tabbed.csv.gz", gzip.compress(b"date\tclose\tclose\n2024-01-02\t1\t1000\n", mtime=0)),
    ],
    # Stable names: pytest-xdist's workers must collect the same ids (gzip's header held the
    # second it was compressed in, and the two workers once collected across a second).
    ids=["quoted", "spaced", "tabbed-gzip"],
)
def test_a_header_naming_a_column_twice_is_refused_naming_it(
    name: str, content: bytes, tmp_path: Path
) -> None:
    """Issue 41, item 9: the readers renamed the second ``close`` to ``close.1``."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFailed) as refused:
        read_table(path, ReadOptions())
    assert [str(p) for p in refused.value.problems] == [
        f"{name}, column 'close': the header names this column twice (columns 2, 3); keep one, "
        "or rename the others"
    ]


def test_a_parquet_naming_a_column_twice_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "twice.parquet"
    table = pa.Table.from_arrays([pa.array(["u1"]), pa.array(["u2"])], names=["user_id"] * 2)
    pq.write_table(table, path)
    with pytest.raises(ImportFailed, match="column 'user_id': the header names this column twice"):
        read_table(path, ReadOptions())


def test_a_first_line_of_repeated_values_is_left_to_the_header_check(tmp_path: Path) -> None:
    """No header line (MovieLens's u.data): the importer's message about it stays."""
    path = tmp_path / "u.data"
    path.write_text("1\t1\t5\t881250949\n2\t3\t4\t881250950\n")
    assert len(read_table(path, ReadOptions()).frame) == 1
