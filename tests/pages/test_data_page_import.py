"""The Data page lists an upload's problems in its problems table, whatever the file holds."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from storage import DataHome, open_engine
from storage.repository import count_rows, session_scope

APP = str(Path(__file__).resolve().parents[2] / "app.py")


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
    import core.market.importers

    def broken_reader(*args: object, **kwargs: object) -> None:
        raise ValueError("a reader bug")

    monkeypatch.setattr(core.market.importers, "import_market", broken_reader)
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
