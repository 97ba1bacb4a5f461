"""Every import problem is reported with file, line and column; nothing half-built survives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.import_problems import ImportFailed
from core.market.context_files import read_headlines, read_macro_series, read_policy_events
from core.market.importers import (
    HIGH_BELOW_LOW,
    MISSING_PRICE,
    NON_POSITIVE_PRICE,
    REPEATED,
    REPEATED_LATER,
    ImportOptions,
    import_market,
    parse_mapping,
    read_prices,
)
from core.market.left_out import LeftOut


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _read_leniently(paths: list[Path], **options) -> tuple[pd.DataFrame, LeftOut]:
    """``read_prices`` without ``--strict``: the prices and what it left out."""
    left_out = LeftOut()
    prices, _ = read_prices(paths, options=ImportOptions(**options), left_out=left_out)
    return prices, left_out


def _problems(paths: list[Path], **kwargs) -> str:
    with pytest.raises(ImportFailed) as failure:
        read_prices(paths, **kwargs)
    return str(failure.value)


def test_a_valid_long_file_imports_sorted(tmp_path: Path, import_prices: pd.DataFrame) -> None:
    shuffled = import_prices.sample(frac=1.0, random_state=0)
    prices, warnings = read_prices([_write(tmp_path, shuffled)])
    assert len(prices) == 600 and list(prices["ticker"].unique()) == ["AAA", "BBB"]
    assert prices.groupby("ticker")["date"].apply(lambda d: d.is_monotonic_increasing).all()
    assert any("not in date order" in w for w in warnings)
    np.testing.assert_allclose(
        prices["close"].to_numpy(), import_prices.sort_values(["ticker", "date"])["close"]
    )


def test_one_file_per_ticker_with_a_column_mapping(tmp_path: Path, import_prices) -> None:
    paths = []
    for ticker, rows in import_prices.groupby("ticker"):
        renamed = rows.drop(columns="ticker").rename(columns={"date": "Day", "close": "Last"})
        paths.append(_write(tmp_path, renamed, f"{ticker.lower()}.csv"))
    prices, _ = read_prices(paths, mapping=parse_mapping("date=Day, close=Last"))
    assert sorted(prices["ticker"].unique()) == ["AAA", "BBB"]


def test_parquet_and_adjusted_close(tmp_path: Path, import_prices) -> None:
    frame = import_prices.assign(**{"Adj Close": import_prices["close"] * 0.5})
    path = tmp_path / "prices.parquet"
    frame.to_parquet(path)
    prices, _ = read_prices([path])
    np.testing.assert_allclose(
        prices["high"], import_prices.sort_values(["ticker", "date"])["high"] * 0.5
    )


ALWAYS_REFUSED = [
    pytest.param(lambda f: f.drop(columns="volume"), "missing column(s) volume", id="missing"),
    pytest.param(
        lambda f: f.assign(close=f["close"].astype(object)).pipe(_set, 3, "close", "abc"),
        "prices.csv, line 5, column 'close': 'abc' is not a finite number",
        id="type",
    ),
    pytest.param(
        lambda f: _set(f, 0, "date", "31/01/2020"),
        "line 2, column 'date': '31/01/2020' is not a date",
        id="date",
    ),
    pytest.param(
        lambda f: _set(f, 7, "low", "inf"), "line 9, column 'low': 'inf' is not a finite", id="inf"
    ),
    pytest.param(
        lambda f: _set(f, 2, "volume", -5.0),
        "line 4, column 'volume': -5 must be between 0 and 1e+15",
        id="volume",
    ),
    pytest.param(lambda f: f.iloc[:0], "header but no data rows", id="header-only"),
]
"""Problems refused with or without ``--strict``."""

LEFT_OUT_UNLESS_STRICT = [
    pytest.param(
        lambda f: _set(f, 7, "open", ""),
        "line 9, column 'open': '' is not a finite number",
        id="nan",
    ),
    pytest.param(
        lambda f: _set(f, 2, "close", -1.0),
        "line 4, column 'close': -1 must be between 1e-06 and 1e+12",
        id="price",
    ),
    pytest.param(
        lambda f: _set(f, 4, "high", 0.01),
        "line 6, column 'high': high is below low",
        id="high-low",
    ),
    pytest.param(
        lambda f: pd.concat([f, f.iloc[[10]]]),
        "line 602, column 'date': duplicate (date, ticker)",
        id="duplicate",
    ),
    pytest.param(
        lambda f: f[f["ticker"] == "AAA"].iloc[:100],
        "ticker AAA has 100 rows; at least 282",
        id="short",
    ),
]
"""Problems refused under ``--strict``; by default the row or ticker is left out."""


@pytest.mark.parametrize(("change", "expected"), ALWAYS_REFUSED + LEFT_OUT_UNLESS_STRICT)
def test_each_problem_names_file_line_and_column_under_strict(
    tmp_path, import_prices, change, expected
) -> None:
    path = _write(tmp_path, change(import_prices.copy()))
    assert expected in _problems([path], options=ImportOptions(strict=True))


@pytest.mark.parametrize(("change", "expected"), ALWAYS_REFUSED)
def test_problems_that_are_not_left_out_are_refused_by_default(
    tmp_path, import_prices, change, expected
) -> None:
    assert expected in _problems([_write(tmp_path, change(import_prices.copy()))])


def test_zero_and_negative_price_rows_are_left_out_and_counted(tmp_path, import_prices) -> None:
    frame = _set(_set(import_prices.copy(), 5, "close", 0.0), 6, "open", -2.0)
    prices, left_out = _read_leniently([_write(tmp_path, frame)])
    assert len(prices) == 598
    aaa_dates = set(prices.loc[prices["ticker"] == "AAA", "date"])
    assert pd.Timestamp(import_prices.loc[5, "date"]) not in aaa_dates
    assert left_out.rows == {"prices.csv": {NON_POSITIVE_PRICE: 2}}
    assert left_out.lines["prices.csv"][NON_POSITIVE_PRICE] == [7, 8]
    assert left_out.describe() == [
        "prices.csv: 2 rows left out, zero or negative price (lines 7, 8)"
    ]


def test_rows_with_empty_prices_are_left_out_and_counted(tmp_path, import_prices) -> None:
    frame = import_prices.copy()
    for column in ["open", "high", "low"]:
        frame = _set(frame, 7, column, "")
    frame = _set(frame, 20, "close", "NaN")
    prices, left_out = _read_leniently([_write(tmp_path, frame)])
    assert (
        len(prices) == 598
        and np.isfinite(prices[["open", "high", "low", "close"]].to_numpy()).all()
    )
    assert left_out.rows == {"prices.csv": {MISSING_PRICE: 2}}
    assert left_out.lines["prices.csv"][MISSING_PRICE] == [9, 22]
    assert left_out.tickers == []


def test_a_row_with_high_below_low_is_left_out_and_counted(tmp_path, import_prices) -> None:
    frame = _set(import_prices.copy(), 4, "high", 0.01)
    prices, left_out = _read_leniently([_write(tmp_path, frame)])
    assert len(prices) == 599 and (prices["high"] >= prices["low"]).all()
    assert left_out.rows == {"prices.csv": {HIGH_BELOW_LOW: 1}}
    assert left_out.describe() == ["prices.csv: 1 row left out, high below low (line 6)"]


def test_a_repeated_date_keeps_the_last_complete_row(tmp_path, import_prices) -> None:
    """Three versions of row 10's (date, ticker): the original (line 12), a corrected one
    (line 602) and an incomplete one (line 603). The corrected one is kept."""
    corrected = import_prices.iloc[[10]].assign(close=import_prices.loc[10, "close"] * 1.01)
    corrected["high"] = corrected[["high", "close"]].max(axis=1)
    incomplete = _set(import_prices.iloc[[10]].copy(), 0, "close", "")
    frame = pd.concat([import_prices, corrected, incomplete], ignore_index=True)
    prices, left_out = _read_leniently([_write(tmp_path, frame)])
    assert len(prices) == 600
    day = prices[(prices["date"] == import_prices.loc[10, "date"]) & (prices["ticker"] == "AAA")]
    assert day["close"].tolist() == pytest.approx([corrected["close"].iloc[0]])
    assert left_out.rows == {"prices.csv": {MISSING_PRICE: 1, REPEATED: 1}}
    assert left_out.lines["prices.csv"] == {MISSING_PRICE: [603], REPEATED: [12]}
    assert left_out.describe() == [
        "prices.csv: 2 rows left out: 1 missing price (line 603), "
        "1 repeated (date, ticker), the last complete row kept (line 12)"
    ]


def test_a_date_repeated_in_a_later_file_keeps_the_later_row(tmp_path, import_prices) -> None:
    aaa = import_prices[import_prices["ticker"] == "AAA"]
    later = aaa.iloc[[-1]].assign(volume=123.0)
    paths = [_write(tmp_path, aaa, "aaa.csv"), _write(tmp_path, later, "aaa_fix.csv")]
    prices, left_out = _read_leniently(paths)
    assert len(prices) == 300 and prices["volume"].iloc[-1] == 123.0
    assert left_out.rows == {"aaa.csv": {REPEATED_LATER: 1}}
    assert left_out.lines["aaa.csv"][REPEATED_LATER] == [301]
    assert "appears in more than one file" in _problems(paths, options=ImportOptions(strict=True))


def test_a_short_history_is_left_out_and_named_with_its_rows(tmp_path, import_prices) -> None:
    from tests.core.conftest import make_prices

    short = make_prices(["CCC"], 100, seed=2).assign(date=lambda f: f["date"].dt.date)
    paths = [_write(tmp_path, import_prices), _write(tmp_path, short, "ccc.csv")]
    prices, left_out = _read_leniently(paths)
    assert sorted(prices["ticker"].unique()) == ["AAA", "BBB"] and len(prices) == 600
    [ticker] = left_out.tickers
    assert (ticker.files, ticker.ticker, ticker.rows) == ("ccc.csv", "CCC", 100)
    assert left_out.rows == {}
    assert left_out.describe() == [
        "ccc.csv: ticker CCC left out: 100 rows; 282 needed (252-row feature warm-up + "
        "30-day label horizon)"
    ]
    strict = _problems(paths, options=ImportOptions(strict=True))
    assert "ccc.csv, column 'ticker': ticker CCC has 100 rows; at least 282" in strict


def test_nothing_left_is_refused_with_what_was_left_out(tmp_path, import_prices) -> None:
    short = import_prices[import_prices["ticker"] == "AAA"].iloc[:50]
    text = _problems([_write(tmp_path, _set(short.copy(), 3, "close", 0.0))])
    assert "prices.csv: nothing is left to import" in text
    assert "prices.csv: 1 row left out, zero or negative price (line 5); ticker AAA left out: " in (
        text
    )
    assert "49 rows" in text


@pytest.mark.parametrize("header", ["Name", "Symbol", "TICKER", "symbol"])
def test_a_ticker_column_names_the_ticker_instead_of_the_file(
    tmp_path, import_prices, header
) -> None:
    frame = import_prices.rename(columns={"ticker": header})
    prices, left_out = _read_leniently([_write(tmp_path, frame, "AAA.new.csv")])
    assert sorted(prices["ticker"].unique()) == ["AAA", "BBB"] and len(prices) == 600
    assert not left_out
    without = import_prices[import_prices["ticker"] == "AAA"].drop(columns="ticker")
    by_name, _ = _read_leniently([_write(tmp_path, without, "AAA.new.csv")])
    assert by_name["ticker"].unique().tolist() == ["AAA.NEW"], "no column: the file names it"


@pytest.mark.parametrize("header", ["Adj Close", "adj_close", "Adj_Close"])
def test_an_adjusted_close_replaces_close_and_scales_the_other_prices(
    tmp_path, import_prices, header
) -> None:
    factor = np.where(np.arange(600) < 100, 0.5, 1.0)  # a 2:1 split after 100 rows
    frame = import_prices.assign(**{header: import_prices["close"] * factor})
    frame = _set(frame, 150, header, "")
    prices, left_out = _read_leniently([_write(tmp_path, frame)])
    expected = import_prices.drop(index=150)
    np.testing.assert_allclose(prices["close"], (expected["close"] * factor[expected.index]))
    np.testing.assert_allclose(prices["open"], (expected["open"] * factor[expected.index]))
    np.testing.assert_allclose(prices["low"], (expected["low"] * factor[expected.index]))
    assert left_out.rows == {"prices.csv": {MISSING_PRICE: 1}}
    assert left_out.lines["prices.csv"][MISSING_PRICE] == [152]


def test_an_import_records_what_it_left_out(tmp_path, import_prices) -> None:
    frame = _set(import_prices.copy(), 4, "high", 0.01)
    data, warnings = import_market([_write(tmp_path, frame)], bundled_macro=False)
    assert data.notes["left_out"].row_count == 1
    assert data.recipe["left_out"] == {
        "rows": {"prices.csv": {HIGH_BELOW_LOW: 1}},
        "tickers": {},
    }
    assert warnings == [], "what was left out is in the notes, not repeated as warnings"
    clean, _ = import_market([_write(tmp_path, import_prices, "clean.csv")])
    assert "left_out" not in clean.recipe, "a clean import keeps its recipe as before"
    _, described = read_prices([_write(tmp_path, frame)])
    assert described == ["prices.csv: 1 row left out, high below low (line 6)"]


def _set(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    frame[column] = frame[column].astype(object)
    frame.iloc[row, frame.columns.get_loc(column)] = value
    return frame


def test_unmapped_column_empty_file_size_and_encoding(tmp_path: Path, import_prices) -> None:
    path = _write(tmp_path, import_prices)
    assert "mapping close=Last names a column that is not in the file" in _problems(
        [path], mapping={"close": "Last"}
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty.csv: the file is empty" in _problems([empty])
    assert "the limit is" in _problems([path], options=ImportOptions(max_file_bytes=1000))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("date,ticker\n2020-01-02,caf\xe9\n".encode("latin-1"))
    assert "latin.csv: line 2: the file is not UTF-8" in _problems([latin])


def test_long_gaps_are_warnings(tmp_path: Path, import_prices) -> None:
    gappy = import_prices.drop(index=range(100, 115))
    _, warnings = read_prices([_write(tmp_path, gappy)], options=ImportOptions(max_gap_days=10))
    assert any("AAA has no rows from" in w for w in warnings)


def test_problems_of_every_file_are_reported_together(tmp_path: Path, import_prices) -> None:
    prices = _write(tmp_path, _set(import_prices.copy(), 0, "close", "x"))
    news = _write(tmp_path, pd.DataFrame({"date": ["2020-01-01"], "ticker": ["AAA"]}), "news.csv")
    policy = _write(
        tmp_path,
        pd.DataFrame({"date": ["2020-01-01"], "type": ["coup"], "urgency": [9], "sector": ["all"]}),
        "policy.csv",
    )
    macro = _write(
        tmp_path, pd.DataFrame({"date": ["2020-01-01"], "series": ["vix"], "value": [-3]}), "m.csv"
    )
    with pytest.raises(ImportFailed) as failure:
        import_market([prices], news=news, policy=policy, macro=macro)
    text = str(failure.value)
    assert "prices.csv, line 2, column 'close'" in text
    assert "news.csv: missing column(s) headline" in text
    assert "policy.csv, line 2, column 'type': 'coup' is not one of" in text
    assert "policy.csv, line 2, column 'urgency': 9 is not an integer from 1 to 5" in text
    assert "m.csv, line 2, column 'value': vix must be positive" in text


def test_news_policy_and_macro_files_feed_the_dataset(tmp_path: Path, import_prices) -> None:
    from core.market.sources import build_market_dataset

    dates = pd.bdate_range("2012-01-02", periods=300)
    news = pd.DataFrame(
        {
            "date": dates[::3].append(dates[-1:]).strftime("%Y-%m-%d"),  # up to the last day
            "ticker": "AAA",
            "headline": "Shares rally on strong results",
        }
    )
    statements = pd.date_range("2012-01-02", dates[-1], freq="BMS").strftime("%Y-%m-%d")
    policy = pd.DataFrame(
        {
            "date": ["2012-03-01", *statements],
            "type": ["rate_cut"] + ["statement"] * len(statements),
            "urgency": [4] + [1] * len(statements),
            "sector": ["financials"] + ["all"] * len(statements),
        }
    )
    months = pd.date_range("2010-01-01", "2013-03-01", freq="MS")
    macro = pd.concat(
        [
            pd.DataFrame({"date": months, "series": s, "value": v})
            for s, v in (("cpi", 100.0), ("aaa", 4.0), ("baa", 5.0))
        ]
        + [
            pd.DataFrame({"date": dates, "series": s, "value": v})
            for s, v in (("oil", 60.0), ("vix", 18.0))
        ]
    )
    data, warnings = import_market(
        [_write(tmp_path, import_prices)],
        news=_write(tmp_path, news, "news.csv"),
        policy=_write(tmp_path, policy, "policy.csv"),
        macro=_write(tmp_path, macro, "macro.csv"),
    )
    assert read_headlines(tmp_path / "news.csv")["score"].gt(0.05).all()
    assert len(read_policy_events(tmp_path / "policy.csv")) == len(policy)
    assert len(read_macro_series(tmp_path / "macro.csv")) == len(macro)
    dataset = build_market_dataset(data)
    aaa = dataset[dataset["ticker"] == "AAA"]
    assert (aaa["mask_news"] == 1).all() and (aaa["news_sentiment_mean"] >= 0).all()
    assert (dataset.loc[dataset["ticker"] == "BBB", "mask_news"] == 0).all()
    assert (dataset["mask_policy"] == 1).all() and (dataset["mask_macro"] == 1).all()
    assert data.recipe["files"]["prices"][0]["name"] == "prices.csv"
    assert warnings == []


@pytest.mark.parametrize("text", ["close", "date=Date,close", "colour=Red"])
def test_bad_mapping_text_is_explained(text: str) -> None:
    with pytest.raises(ValueError, match="mapping entry"):
        parse_mapping(text)


CELL = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", "nan", "inf", "-1", "0", "1e308", "2020-02-30", "NaT", '"', ",", "\n"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    drop=st.lists(
        st.sampled_from(["date", "ticker", "open", "high", "low", "close", "volume"]), max_size=2
    ),
    edits=st.lists(st.tuples(st.integers(0, 599), st.integers(0, 6), CELL), max_size=6),
    truncate=st.one_of(st.none(), st.integers(0, 4000)),
    junk=st.binary(max_size=8),
)
def test_fuzzed_csv_ends_in_a_clear_error_or_a_valid_dataset(
    tmp_path_factory, import_prices, drop, edits, truncate, junk
) -> None:
    frame = import_prices.astype(object)
    for row, column, value in edits:
        frame.iat[row, column] = value
    frame = frame.drop(columns=sorted(set(drop)))
    data = frame.to_csv(index=False).encode()
    if truncate is not None:
        data = data[:truncate]
    path = tmp_path_factory.mktemp("fuzz") / "prices.csv"
    path.write_bytes(data + junk)
    try:
        prices, _ = read_prices([path])
    except ImportFailed as failure:
        assert failure.problems and all(p.file == "prices.csv" for p in failure.problems)
        return
    assert len(prices) >= 282 and prices[["open", "high", "low", "close"]].gt(0).all().all()
    assert np.isfinite(prices[["open", "high", "low", "close", "volume"]].to_numpy()).all()
    assert not prices.duplicated(["date", "ticker"]).any()


def _offset_dates(frame: pd.DataFrame, offset: str = "-05:00") -> pd.DataFrame:
    return frame.assign(date=frame["date"] + "T00:00:00" + offset)


def test_dates_with_mixed_utc_offsets_keep_their_wall_clock_day(tmp_path, import_prices) -> None:
    frame = _offset_dates(import_prices)
    frame.loc[1, "date"] = import_prices.loc[1, "date"] + "T00:00:00+01:00"
    frame.loc[2, "date"] = import_prices.loc[2, "date"]  # naive beside offsets
    prices, _ = read_prices([_write(tmp_path, frame)])
    aaa = prices[prices["ticker"] == "AAA"].reset_index(drop=True)
    expected = pd.to_datetime(import_prices.loc[:299, "date"])
    assert (aaa["date"] == expected).all(), "each date keeps its own wall-clock day"


def test_an_unparseable_date_among_offsets_is_a_row_problem(tmp_path, import_prices) -> None:
    frame = _offset_dates(import_prices)
    frame.loc[1, "date"] = import_prices.loc[1, "date"] + "T00:00:00+01:00"
    frame.loc[4, "date"] = "2012-13-45T00:00:00+01:00"
    expected = "prices.csv, line 6, column 'date': '2012-13-45T00:00:00+01:00' is not a date"
    assert expected in _problems([_write(tmp_path, frame)])


def test_cli_import_with_mixed_offsets_ends_in_a_clear_message(
    data_home, tmp_path: Path, import_prices
) -> None:
    from typer.testing import CliRunner

    from cli import app

    frame = _offset_dates(import_prices.iloc[:10].copy())
    frame.loc[1, "date"] = "2012-01-03T00:00:00+01:00"
    frame.loc[3, "date"] = "January 5th"
    path = _write(tmp_path, frame)
    result = CliRunner().invoke(app, ["data", "import", "mine", "--prices", str(path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), "a message, not a traceback"
    assert "prices.csv, line 5, column 'date': 'January 5th' is not a date" in result.output


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("close", "1e308", "line 7, column 'close': 1e+308 must be between 1e-06 and 1e+12"),
        ("low", "1e-300", "line 7, column 'low': 1e-300 must be between 1e-06 and 1e+12"),
        ("volume", "1e308", "line 7, column 'volume': 1e+308 must be between 0 and 1e+15"),
        ("date", "1650-01-03", "line 7, column 'date': '1650-01-03' is outside 1700-01-01"),
    ],
    ids=["huge-price", "tiny-price", "huge-volume", "ancient-date"],
)
def test_values_the_build_cannot_use_are_row_problems(
    tmp_path, import_prices, column, value, expected
) -> None:
    frame = _set(import_prices.copy(), 5, column, value)
    assert f"prices.csv, {expected}" in _problems([_write(tmp_path, frame)])


def _constant(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(open=5.0, high=5.0, low=5.0, close=5.0)


@pytest.mark.parametrize(
    "change",
    [
        lambda f: _set(f, 5, "close", 1e308),
        lambda f: f.assign(volume=1e308),
        lambda f: f.assign(open=1e200, high=1e200, low=1e200, close=1e200),
        _constant,
    ],
    ids=["one-huge-close", "huge-volumes", "huge-prices", "constant-prices"],
)
def test_a_ticker_that_passes_validation_builds(tmp_path: Path, import_prices, change) -> None:
    from core.market.sources import build_market_dataset

    one_ticker = change(import_prices[import_prices["ticker"] == "AAA"].copy())
    try:
        data, _ = import_market([_write(tmp_path, one_ticker)])
    except ImportFailed as failure:
        assert failure.problems[0].file == "prices.csv"
        return
    assert len(build_market_dataset(data)) > 0


def test_a_ticker_whose_prices_never_move_is_refused_under_strict(
    tmp_path: Path, import_prices
) -> None:
    frame = import_prices.copy()
    frame.loc[frame["ticker"] == "BBB", ["open", "high", "low", "close"]] = 5.0
    text = _problems([_write(tmp_path, frame)], options=ImportOptions(strict=True))
    assert "prices.csv, column 'ticker': ticker BBB has no row" in text
    assert "rsi_7" in text, "names the features that are never defined"


def test_a_ticker_whose_prices_never_move_is_left_out_by_default(
    tmp_path: Path, import_prices
) -> None:
    frame = import_prices.copy()
    frame.loc[frame["ticker"] == "BBB", ["open", "high", "low", "close"]] = 5.0
    prices, left_out = _read_leniently([_write(tmp_path, frame)])
    assert list(prices["ticker"].unique()) == ["AAA"] and len(prices) == 300
    [ticker] = left_out.tickers
    assert (ticker.files, ticker.ticker, ticker.rows) == ("prices.csv", "BBB", 300)
    assert "rsi_7" in ticker.reason, "names the features that are never defined"


def test_problems_are_capped_per_file_and_counted_exactly(tmp_path: Path, import_prices) -> None:
    broken = import_prices.assign(close="x")
    paths = [_write(tmp_path, broken, "one.csv"), _write(tmp_path, broken.iloc[:70], "two.csv")]
    with pytest.raises(ImportFailed) as caught:
        read_prices(paths)
    failure = caught.value
    assert [p.file for p in failure.problems].count("one.csv") == 50
    assert [p.file for p in failure.problems].count("two.csv") == 50
    assert failure.total == 600 + 70
    assert str(failure).endswith(f"... and {600 + 70 - 20} more problems")


def test_an_adjustment_that_scales_prices_out_of_range_is_a_row_problem(
    tmp_path: Path, import_prices
) -> None:
    frame = import_prices.assign(adj_close=import_prices["close"])
    frame = _set(frame, 5, "close", 1e-6)
    frame = _set(frame, 5, "adj_close", 1e6)
    text = _problems([_write(tmp_path, frame)])
    assert "prices.csv, line 7, column 'adj_close': open scaled by adj_close / close is" in text


def test_gap_warnings_are_capped_per_ticker(tmp_path: Path, import_prices) -> None:
    weekly = import_prices.assign(
        date=pd.date_range("1990-01-01", periods=len(import_prices), freq="W-MON").strftime(
            "%Y-%m-%d"
        )
    )
    _, warnings = read_prices([_write(tmp_path, weekly)], options=ImportOptions(max_gap_days=3))
    assert len(warnings) == 2 * 11, "ten gaps listed per ticker, then a count"
    assert warnings[10] == "prices.csv: AAA has 289 more gaps of over 3 days"


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory) -> tuple:
    """Two tickers 2013-2019 imported without a macro file (the data, the prices file and
    the built dataset): the bundled macro series (VIX 2014-01-03 .. 2019-01-03) cover part of
    the dataset's rows, 2014-2019."""
    from core.market.sources import build_market_dataset
    from tests.core.conftest import make_prices

    days = pd.bdate_range("2013-01-02", "2019-12-31")
    frame = make_prices(["AAA", "BBB"], len(days), seed=9)
    frame["date"] = np.tile(days.strftime("%Y-%m-%d"), 2)
    path = tmp_path_factory.mktemp("overlap") / "prices.csv"
    frame.to_csv(path, index=False)
    data, _ = import_market([path])
    return data, path, build_market_dataset(data)


def test_imported_prices_get_the_bundled_macro_where_dates_overlap(overlapping) -> None:
    from core.market.context import MACRO_FEATURES

    data, _, dataset = overlapping
    assert data.recipe["macro"]["source"] == "bundled"
    assert data.recipe["macro"]["series"]["vix"] == ["2014-01-03", "2019-01-03"]
    assert "no macro file" in data.notes["context"][0]
    # Observed from the first day the VIX has its 21-day change (3 February 2014) to a week
    # after the last VIX and oil values (3 January 2019); unknown before and after.
    observed = dataset["date"].between("2014-02-03", "2019-01-10")
    assert (dataset.loc[observed, "mask_macro"] == 1).all()
    assert (dataset.loc[~observed, "mask_macro"] == 0).all()
    assert dataset["date"].min() < pd.Timestamp("2014-02-03"), "rows before the span exist"
    late = dataset[dataset["date"] > "2019-03-05"]  # past every series' staleness limit
    assert len(late) > 400 and late[MACRO_FEATURES].isna().all(axis=None), "never carried"
    assert dataset.loc[dataset["date"] > "2019-01-10", "vix_level"].isna().all()


def test_the_bundled_macro_join_respects_release_lags(overlapping) -> None:
    """On each day, the macro features equal those computed from only the observations
    released by that day: no value is seen before its release."""
    from core.market.bundled import bundled_macro_series
    from core.market.context import MACRO_FEATURES, macro_features, release_dates

    _, _, dataset = overlapping
    aaa = dataset[dataset["ticker"] == "AAA"].set_index("date")
    bundled = bundled_macro_series()
    released = pd.concat(
        [release_dates(name, rows["date"]) for name, rows in bundled.groupby("series")]
    ).reindex(bundled.index)
    for day in ["2016-03-15", "2016-03-16", "2017-07-03", "2018-12-17"]:
        known = macro_features(bundled[released <= pd.Timestamp(day)])
        expected = known.set_index("date").loc[day, MACRO_FEATURES]
        pd.testing.assert_series_equal(
            aaa.loc[day, MACRO_FEATURES], expected, check_names=False, check_dtype=False
        )
    # February 2016's CPI is released on 16 March: the day before still sees January's.
    assert aaa.loc["2016-03-15", "infl_yoy"] != aaa.loc["2016-03-16", "infl_yoy"]


def test_a_macro_file_replaces_the_bundled_series(tmp_path: Path, import_prices) -> None:
    from core.market.sources import build_market_dataset

    days = pd.bdate_range("2012-01-02", periods=300)
    macro = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "series": "vix", "value": 18.0})
    data, warnings = import_market(
        [_write(tmp_path, import_prices)], macro=_write(tmp_path, macro, "macro.csv")
    )
    assert data.recipe["macro"] == {
        "source": "file",
        "name": "macro.csv",
        "series": {"vix": ["2012-01-02", "2013-02-22"]},
    }
    assert (
        "your file macro.csv; the bundled macro series are not joined" in data.notes["context"][0]
    )
    assert warnings == [
        "macro.csv: no cpi, aaa, baa, oil series; the macro group needs all of "
        "cpi, aaa, baa, oil, vix, so mask_macro stays 0"
    ]
    dataset = build_market_dataset(data)
    assert (dataset["vix_level"] == 0.18).all() and (dataset["mask_macro"] == 0).all()
    off, _ = import_market([_write(tmp_path, import_prices)], bundled_macro=False)
    assert off.macro_series is None and off.recipe["macro"] == {"source": "none"}


def test_data_show_reports_context_coverage_per_group_ticker_and_year(
    data_home, overlapping
) -> None:
    from typer.testing import CliRunner

    from cli import app

    _, path, dataset = overlapping
    runner = CliRunner()
    imported = runner.invoke(app, ["data", "import", "overlap", "--prices", str(path)])
    assert imported.exit_code == 0, imported.output
    assert "the group is complete from 2014-02-03 to 2019-01-10" in imported.output
    shown = json.loads(runner.invoke(app, ["data", "show", "overlap", "--json"]).output)
    coverage = shown["coverage"]
    by_year = dataset.groupby(dataset["date"].dt.year)["mask_macro"].mean()
    assert coverage["rows"] == len(dataset)
    assert coverage["overall"]["macro"] == pytest.approx(dataset["mask_macro"].mean(), abs=1e-4)
    assert coverage["overall"]["news"] == 0 and coverage["overall"]["policy"] == 0
    assert coverage["by_year"]["2016"]["macro"] == 1.0
    assert coverage["by_year"]["2019"]["macro"] == pytest.approx(by_year[2019], abs=1e-4)
    assert 0 < by_year[2019] < 0.05 and 0.9 < by_year[2014] < 1
    assert set(coverage["by_ticker"]) == {"AAA", "BBB"}
    assert shown["recipe"]["macro"]["source"] == "bundled"
    text = runner.invoke(app, ["data", "show", "overlap"]).output
    assert "news  policy   macro" in text
    assert "  2016            0.00    0.00    1.00" in text


def test_a_price_file_naming_close_twice_is_refused(tmp_path: Path, import_prices) -> None:
    """Issue 41, item 9: the second close (1,000 x the first) was dropped without a word."""
    frame = import_prices.assign(close_again=import_prices["close"] * 1000)
    path = _write(tmp_path, frame)
    header, rest = path.read_text().split("\n", 1)
    path.write_text(header.replace("close_again", "close") + "\n" + rest)
    problems = _problems([path])
    assert "prices.csv, column 'close': the header names this column twice (columns 6, 8)" in (
        problems
    )
