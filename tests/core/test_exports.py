"""Downloads open in a spreadsheet as text, never as formulas (issue 23, item 6), and every CSV
the product writes goes through the one escaping writer (issue 41, item 3)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd

from core.exports import spreadsheet_csv, write_spreadsheet_csv

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "pages"
PRODUCT = ("api", "cli", "core", "pages", "services", "storage")


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


def test_every_csv_the_product_writes_goes_through_the_escaping_writer() -> None:
    """`trendlab predict --output` and the downloaded price and macro files used
    ``frame.to_csv``; only core/exports.py may call it."""
    raw = {
        str(path.relative_to(ROOT)): len(re.findall(r"\.to_csv\(|csv\.writer", path.read_text()))
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
    }
    assert {name: count for name, count in raw.items() if count} == {"core/exports.py": 1}


def test_the_written_file_escapes_text_and_keeps_numbers_and_dates(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02", "2024-01-03"]),
            "ticker": pd.Categorical(["+SUM(1,2)", "AAPL"]),
            "note": ["-2+3+cmd|' /C calc'!A0", None],
            "score": [-0.25, 0.5],
        }
    )
    path = tmp_path / "out" / "scores.csv"
    write_spreadsheet_csv(frame, path)
    assert path.read_text().splitlines() == [
        "date,ticker,note,score",
        """2024-01-02,"'+SUM(1,2)",'-2+3+cmd|' /C calc'!A0,-0.25""",
        "2024-01-03,AAPL,,0.5",
    ]
    assert [p.name for p in path.parent.iterdir()] == ["scores.csv"], "no temporary file left"
