"""The Data page lists an upload's problems in its problems table, whatever the file holds,
and leaves nothing in the data home's uploads folder, even when its process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from storage import DataHome, open_engine
from storage.repository import count_rows, session_scope

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PRICES = b"date,ticker,open,high,low,close,volume\n2020-01-02,AAA,1,2,1,1.5,10\n"
BLOCKED_UPLOAD = """
import os, sys, time
from pathlib import Path

import core.market.importers

def blocked(*args, **kwargs):
    Path(os.environ["IMPORTING_MARKER"]).write_text("importing")
    time.sleep(300)

core.market.importers.import_market = blocked
from streamlit.testing.v1 import AppTest

at = AppTest.from_file(sys.argv[1], default_timeout=300)
at.run()
at.switch_page("pages/data.py").run()
at.radio[0].set_value("Upload files").run()
at.file_uploader[0].upload("prices.csv", sys.stdin.buffer.read(), "text/csv")
at.button[0].click().run()
"""
"""The Data page in a process of its own, its import stuck until the test kills it."""


def _upload(prices: bytes) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio[0].set_value("Upload files").run()
    at.file_uploader[0].upload("prices.csv", prices, "text/csv")
    at.button[0].click().run()
    return at


def test_mixed_utc_offsets_show_in_the_problems_table(data_home: DataHome) -> None:
    at = _upload(
        b"date,ticker,open,high,low,close,volume\n"
        b"2020-01-02T00:00:00-05:00,AAA,1,2,1,1.5,10\n"
        b"2020-01-03T00:00:00+01:00,AAA,1,2,1,1.5,10\n"
        b"2020-01-06,AAA,1,2,1,1.5,10\n"
        b"2020-01-07T00:00:00+99:00,AAA,1,2,1,1.5,10\n"
    )
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert not any("Column mapping" in e for e in errors), errors
    assert any("nothing was stored" in e for e in errors), errors
    problems = at.dataframe[0].value
    row = problems[problems["column"] == "date"].iloc[0]
    assert (row["file"], row["line / row"]) == ("prices.csv", 5)
    assert "is not a date like 2024-01-31" in row["problem"]
    engine = open_engine(data_home.database_url)
    with session_scope(engine) as session:
        assert count_rows(session=session)["datasets"] == 0
    engine.dispose()


def test_an_unexpected_reader_error_is_not_called_a_mapping_problem(
    data_home: DataHome, monkeypatch
) -> None:
    import services.datasets

    def broken_reader(*args: object, **kwargs: object) -> None:
        raise ValueError("a reader bug")

    monkeypatch.setattr(services.datasets, "import_market", broken_reader)
    at = _upload(b"date,ticker,open,high,low,close,volume\n2020-01-02,AAA,1,2,1,1.5,10\n")
    errors = [e.value for e in at.error]
    assert not any("Column mapping" in e for e in errors), errors
    assert any("unexpected error; nothing was stored" in e for e in errors), errors
    assert [shown.message for shown in at.exception] == ["a reader bug"], "shown with its trace"
    assert list(data_home.uploads.iterdir()) == [], "the staged upload is removed"


def test_a_bad_mapping_is_named_as_such(data_home: DataHome) -> None:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio[0].set_value("Upload files").run()
    at.file_uploader[0].upload("prices.csv", b"date\n2020-01-02\n", "text/csv")
    at.text_input[1].set_value("close")
    at.button[0].click().run()
    assert any("Column mapping: mapping entry 'close'" in e.value for e in at.error)


@pytest.mark.slow
def test_an_upload_whose_process_was_killed_mid_import_is_removed_at_start_up(
    tmp_path: Path,
) -> None:
    """SIGKILL runs no ``finally``: the staged upload stays until the next process checks the
    data home, which removes it (issue 23)."""
    home, marker = tmp_path / "home", tmp_path / "importing"
    env = {**os.environ, "TRENDLAB_HOME": str(home), "TRENDLAB_JOB_RUNNER": "0"}
    env["IMPORTING_MARKER"] = str(marker)
    env.pop("TRENDLAB_DB_URL", None)
    with (tmp_path / "stderr.log").open("wb") as stderr:
        page = subprocess.Popen(
            [sys.executable, "-c", BLOCKED_UPLOAD, APP],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stderr=stderr,
        )
    page.stdin.write(PRICES)
    page.stdin.close()
    deadline = time.monotonic() + 120
    while not marker.exists() and page.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert marker.exists(), (tmp_path / "stderr.log").read_text()
        staged = list((home / "uploads").iterdir())
        assert staged, "the upload is staged while it is imported"
    finally:
        os.kill(page.pid, signal.SIGKILL)
        page.wait(timeout=60)
    assert list((home / "uploads").iterdir()) == staged, "a killed import cleans nothing up"
    subprocess.run(
        [sys.executable, "-c", "from services.database import data_home; data_home()"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    assert list((home / "uploads").iterdir()) == [], "start-up removes the killed import's files"


def test_newer_rows_uploaded_on_the_data_page_make_the_next_version(
    data_home: DataHome,
) -> None:
    """Issue 25: the Data page's update form reads newer prices as an upload is read and
    stores the rebuilt dataset as its next version, the previous one kept as NAME@v1."""
    from core.market.sources import synthetic_data
    from tests.pages.conftest import store_small_dataset

    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    engine.dispose()
    longer = synthetic_data(
        ["AAA", "BBB", "CCC"], "2016-01-01", "2021-02-26", seed=3, signal=True, horizons=[7, 30]
    ).prices
    newer = longer[longer["date"] > "2020-12-31"].to_csv(index=False).encode()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio[0].set_value("Newer rows for a stored dataset").run()
    at.file_uploader[0].upload("newer.csv", newer, "text/csv")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("Updated 'small' to version 2" in s.value for s in at.success), at.error
    stored = at.dataframe[0].value
    assert set(stored["name"]) == {"small", "small@v1"}
    assert str(stored.set_index("name").loc["small", "to"])[:10] == "2021-02-26"


def test_an_upload_lists_what_it_left_out_and_stores_the_rest(data_home: DataHome) -> None:
    from tests.core.conftest import make_prices

    frame = make_prices(["AAA", "BBB"], 300, seed=4)
    frame = frame[(frame["ticker"] == "AAA") | (frame.index < 350)].copy()  # BBB: 50 rows
    frame.loc[3, "close"] = 0.0
    at = _upload(frame.to_csv(index=False).encode())
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    expected = (
        "prices.csv: 1 row left out, zero or negative price (line 5); ticker BBB left out: "
        "50 rows; 282 needed (252-row feature warm-up + 30-day label horizon)"
    )
    assert expected in warnings, warnings
    engine = open_engine(data_home.database_url)
    with session_scope(engine) as session:
        assert count_rows(session=session)["datasets"] == 1
    engine.dispose()
