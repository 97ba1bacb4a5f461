"""Users' files (CSV or Parquet, gzip or not) opened and parsed into cells of text.

The checks made before any cell is built: the file's size, its content once decompressed, its
columns, rows and cells (a CSV's from its header line and line count, a Parquet's from its
metadata) and the field separator (comma, tab, semicolon or bar, sniffed from the header line
unless given); then every cell read as a stripped string, a file that is not UTF-8 text naming
the line of its first bad byte.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.import_problems import ImportFailed, Problem


@dataclass(frozen=True)
class ReadOptions:
    """Limits applied to every file read."""

    max_file_bytes: int = 50 * 1024 * 1024
    """Largest accepted file (the dashboard's upload limit is the same 50 MB)."""
    sep: str | None = None
    """Field separator of text files (",", "\\t", ";" or "|"); None sniffs it from the
    header line."""
    max_columns: int = 1_000
    """Most columns: a CSV's from its header line, a Parquet's from its metadata."""
    max_rows: int = 2_000_000
    """Most data rows: a CSV's lines (a quoted cell's line breaks count too), a Parquet's
    row count from its metadata, which a few kB of compressed repeats can make millions."""
    max_cells: int = 20_000_000
    """Most cells (rows x columns), about a gigabyte once read as text."""
    max_text_bytes: int = 256 * 1024 * 1024
    """Most bytes of text in all cells together once decoded. A CSV's are within
    ``max_file_bytes``; a Parquet's repeated strings (dictionary-encoded, compressed) can unpack
    a few hundred kB into gigabytes, so they are counted from its metadata and dictionaries
    before any cell is built (numbers and dates, a few bytes each, are bounded by
    ``max_cells``)."""


SEPARATORS = (",", "\t", ";", "|")
"""Separators a text file may use; the one the header line holds most of is chosen."""


def check_shape(path: Path, options: ReadOptions, sep: str | None) -> None:
    """Refuse a table wider, longer or larger than ``options`` allow, before it is parsed:
    a CSV's columns from its header line and rows from its line count (one streamed pass, no
    cells built), a Parquet's from its metadata, and its decoded text from its metadata and
    string dictionaries."""
    parquet = None
    if sep is None:
        try:
            parquet = pq.ParquetFile(path)
        except Exception as error:  # not Parquet: the reader below says so
            raise ImportFailed([Problem(path.name, f"cannot be read: {error}")]) from error
        columns, rows = parquet.metadata.num_columns, parquet.metadata.num_rows
    else:
        columns, rows = _csv_shape(path, sep)
    problems = []
    if columns > options.max_columns:
        problems.append(f"the file has {columns} columns; the limit is {options.max_columns}")
    if rows > options.max_rows:
        problems.append(f"the file has {rows} rows; the limit is {options.max_rows}")
    if columns * rows > options.max_cells and not problems:
        problems.append(
            f"the file has {columns * rows} cells ({rows} rows x {columns} columns); "
            f"the limit is {options.max_cells}"
        )
    if parquet is not None and not problems:
        problems += _parquet_column_problems(parquet)
    if parquet is not None and not problems:
        text = _parquet_text_bytes(path, parquet, options.max_text_bytes)
        if text > options.max_text_bytes:
            problems.append(
                f"the file's cells hold more than {options.max_text_bytes / 1024**2:g} MB of "
                f"text once decoded ({rows} rows x {columns} columns), the limit for its content"
            )
    if problems:
        raise ImportFailed([Problem(path.name, message) for message in problems])


def _parquet_column_problems(parquet: pq.ParquetFile) -> list[str]:
    """A Parquet's columns that cannot be read as one text cell per row: nested values
    (lists, records, maps)."""
    return [
        f"column {field.name!r} holds {field.type}; a table file holds one plain value per cell"
        for field in parquet.schema_arrow
        if pa.types.is_nested(field.type)
    ]


STRING_TYPES = ("BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY")
"""Parquet's physical types of text and bytes."""


def _parquet_text_bytes(path: Path, parquet: pq.ParquetFile, limit: int) -> int:
    """The bytes of text a Parquet's cells hold once decoded, counted before any is decoded;
    counting stops once past ``limit``. Per row group and column: a dictionary-encoded string
    column's exact length (each row's dictionary entry, read as indices), a plain one's from
    its uncompressed size in the metadata; numbers and dates are not text."""
    metadata = parquet.metadata
    strings = [column.path for column in parquet.schema if column.physical_type in STRING_TYPES]
    as_indices = pq.ParquetFile(path, read_dictionary=strings)
    total = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for position in range(row_group.num_columns):
            chunk = row_group.column(position)
            if chunk.physical_type not in STRING_TYPES:
                continue
            if chunk.has_dictionary_page and chunk.total_uncompressed_size <= limit:
                total += _dictionary_text_bytes(as_indices, group, chunk.path_in_schema)
            else:
                total += chunk.total_uncompressed_size
            if total > limit:
                return total
    return total


def _dictionary_text_bytes(as_indices: pq.ParquetFile, group: int, column: str) -> int:
    """The decoded length of one row group's dictionary-encoded string column, read as
    dictionary indices (4 bytes a row) and never as strings; ``as_indices`` reads the file's
    string columns as dictionaries."""
    values = as_indices.read_row_group(group, columns=[column]).column(0)
    total = 0
    for chunk in values.chunks:
        if not pa.types.is_dictionary(chunk.type):
            total += chunk.nbytes
            continue
        lengths = pc.binary_length(chunk.dictionary)
        total += pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0
    return total


def _csv_shape(path: Path, sep: str) -> tuple[int, int]:
    """(columns in the header line, lines after it), read in 1 MB chunks: an upper bound,
    since blank lines and quoted separators or line breaks count too."""
    header, lines, tail = None, 0, b""
    with open_bytes(path) as handle:
        while chunk := handle.read(1 << 20):
            if header is None:
                tail += chunk
                end = tail.find(b"\n")
                if end < 0 or not tail[:end].strip():
                    if end >= 0:
                        tail = tail[end + 1 :]
                    continue
                header, chunk, tail = tail[:end], tail[end + 1 :], b""
            lines += chunk.count(b"\n")
            tail = chunk[-1:] if chunk else tail
    if header is None:  # a header without a final newline, or nothing
        header = tail
    elif tail and tail != b"\n":
        lines += 1  # the last line has no newline
    columns = header.decode("utf-8-sig", "replace").count(sep) + 1 if header.strip() else 0
    return columns, lines


def header_names(path: Path, sep: str | None) -> list[str]:
    """The column names as the file writes them, duplicates kept (the readers rename a
    repeated name, ``close`` and ``close.1``): a CSV's first non-blank line split as CSV (none
    when that line is not UTF-8: the reader says so, naming it), a Parquet's schema."""
    if sep is None:
        return [str(name) for name in pq.ParquetFile(path).schema_arrow.names]
    with open_bytes(path) as handle:
        head = handle.read(1 << 20)
    line = next((line for line in head.splitlines() if line.strip()), b"")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return []
    return next(csv.reader([text], delimiter=sep), [])


GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    """Whether the file is gzip-compressed (by its first bytes, whatever its name)."""
    with Path(path).open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_bytes(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzip."""
    return gzip.open(path, "rb") if is_gzip(path) else Path(path).open("rb")


def file_bytes(path: Path) -> bytes:
    with open_bytes(path) as handle:
        return handle.read()


def check_decompressed_size(path: Path, limit: int) -> None:
    """Refuse a compressed file whose content exceeds ``limit`` bytes, reading no more than
    the limit (a small file that unpacks to gigabytes never fills memory)."""
    try:
        with gzip.open(path, "rb") as handle:
            read = 0
            while chunk := handle.read(1 << 20):
                read += len(chunk)
                if read > limit:
                    raise ImportFailed(
                        [
                            Problem(
                                path.name,
                                f"the file unpacks to more than {limit / 1024**2:g} MB, "
                                "the limit for its content",
                            )
                        ]
                    )
    except (OSError, EOFError) as error:
        raise ImportFailed([Problem(path.name, f"is not a readable gzip file: {error}")]) from None


def sniff_separator(path: Path) -> str:
    """The separator of ``SEPARATORS`` that the header line holds most of (a comma when it
    holds none: a one-column file)."""
    with open_bytes(path) as handle:
        head = handle.read(1 << 16).decode("utf-8-sig", "replace")
    header = next((line for line in head.splitlines() if line.strip()), "")
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    chosen = max(counts, key=counts.get)
    return chosen if counts[chosen] else ","


def read_csv_text(path: Path, sep: str = ",") -> pd.DataFrame:
    """Every cell as a stripped string. Arrow's reader comes first: its strings are not
    Python objects, so a large file costs a fraction of the memory; files it refuses (ragged
    rows, a header without a final newline) go to pandas' C reader, which reads short rows
    with empty cells and names the line of a row with too many."""
    text_only = {
        "dtype": str,
        "keep_default_na": False,
        "encoding": "utf-8-sig",
        "sep": sep,
        "compression": "gzip" if is_gzip(path) else None,
    }
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
    data = file_bytes(path)
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return ImportFailed(
            [Problem(path.name, f"line {line}: the file is not UTF-8 text (byte {error.start})")]
        )
    return ImportFailed([Problem(path.name, "the file is not UTF-8 text")])


def read_parquet_text(path: Path) -> pd.DataFrame:
    return _stripped_text(pd.read_parquet(path))


def _stripped_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as strings without surrounding blanks, missing cells as "" (column by column, so
    only one column is ever copied at a time)."""
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        frame.isetitem(position, column.astype(str).where(column.notna(), "").str.strip())
    return_freed_arrow_memory()
    return frame


def return_freed_arrow_memory() -> None:
    """Arrow's allocator keeps freed blocks for reuse; the parse's scratch space is not needed
    again, and handing it back lowers the peak of the build that follows an import."""
    pa.default_memory_pool().release_unused()
