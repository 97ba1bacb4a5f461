"""Tables written for people to open: CSV that a spreadsheet shows without running formulas.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets (CSV injection: a ticker named
``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0`` would run when the download is opened). Text
cells that start so are written with a leading apostrophe, which the spreadsheet shows as
text and drops; numbers (a negative return) are numbers, not text, and stay as they are.
"""

from __future__ import annotations

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, made text; others unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_csv(frame: pd.DataFrame) -> str:
    """``frame`` as CSV with every text cell (and column name) escaped (see the module)."""
    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(escape_cell)
    safe.columns = [escape_cell(str(c)) for c in safe.columns]
    return safe.to_csv(index=False)
