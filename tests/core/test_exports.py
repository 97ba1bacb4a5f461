"""Downloads open in a spreadsheet as text, never as formulas (issue 23, item 6)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd

from core.exports import spreadsheet_csv

PAGES = Path(__file__).resolve().parents[2] / "pages"


def test_cells_a_spreadsheet_would_run_are_written_as_text() -> None:
    hostile = ["=cmd|' /C calc'!A0", "@SUM(A1:A9)", "+1+1", "-2+3", '=HYPERLINK("x")', "\tx"]
    frame = pd.DataFrame({"ticker": [*hostile, "AAPL"], "score": [-0.5] * 7})
    written = pd.read_csv(io.StringIO(spreadsheet_csv(frame)), keep_default_na=False)
    assert written["ticker"].tolist()[:-1] == ["'" + cell for cell in hostile]
    assert written["ticker"].iloc[-1] == "AAPL"
    assert (written["score"] == -0.5).all(), "numbers stay numbers, negative ones too"


def test_every_page_download_goes_through_the_escaping_writer() -> None:
    """The test-predictions CSV on Evaluate and the batch output on Predict wrote
    ``frame.to_csv`` unescaped; no page may write CSV any other way."""
    raw = {
        page.name: len(re.findall(r"\.to_csv\(", page.read_text())) for page in PAGES.glob("*.py")
    }
    assert {name: count for name, count in raw.items() if count} == {}
