"""Every CSV the product writes (page downloads, `trendlab predict --output`, downloaded prices
and macro series): CSV that a spreadsheet shows without running formulas.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets (CSV injection: a ticker named
``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0`` would run when the download is opened). Text
cells that start so are written with a leading apostrophe, which the spreadsheet shows as
text and drops; numbers (a negative return) are numbers, not text, and stay as they are.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, made text; others unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_csv(frame: pd.DataFrame) -> str:
    """``frame`` as CSV with every text cell (and column name) escaped (see the module);
    numbers and dates are written as they are."""
    safe = frame.copy()
    for position in range(safe.shape[1]):
        column = safe.iloc[:, position]
        if _holds_text(column):
            safe.isetitem(position, column.astype(object).map(escape_cell))
    safe.columns = [escape_cell(str(c)) for c in safe.columns]
    return safe.to_csv(index=False)


def write_spreadsheet_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``spreadsheet_csv(frame)`` to ``path`` through a temporary file beside it, so a
    failed write leaves no half file under the name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(spreadsheet_csv(frame), encoding="utf-8")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _holds_text(column: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(column)
        or pd.api.types.is_string_dtype(column)
        or isinstance(column.dtype, pd.CategoricalDtype)
    )
