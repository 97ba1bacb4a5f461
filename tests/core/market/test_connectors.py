"""Downloads are off by default, cached by request, and read exactly like imports; every
response here is a recorded one (tests/core/market/recorded/), never the network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.import_problems import ImportFailed
from core.market.connectors import (
    ALLOW_ENV,
    FRED_SERIES,
    DownloadFailed,
    DownloadsDisabled,
    cache_path,
    download_macro,
    download_prices,
    fred_csv_url,
    http_fetch,
    parse_yahoo_chart,
    yahoo_chart_url,
)
from core.market.context_files import read_macro_series
from core.market.importers import ImportOptions, import_market

RECORDED = Path(__file__).parent / "recorded"
PRICE_SPAN = ("2016-10-01", "2018-01-31")
MACRO_SPAN = ("2015-01-01", "2018-12-31")


def recorded_file(url: str) -> Path:
    """The recorded response for a Yahoo chart or FRED CSV request."""
    parsed = urlparse(url)
    if parsed.netloc.endswith("finance.yahoo.com"):
        symbol = unquote(parsed.path.rsplit("/", 1)[-1]).lstrip("^")
        return RECORDED / f"yahoo_chart_{symbol}.json"
    return RECORDED / f"fred_{parse_qs(parsed.query)['id'][0]}.csv"


class Recorded:
    """A fetch that answers from the recorded responses and counts its calls."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return recorded_file(url).read_bytes()


def refuse(url: str) -> bytes:
    raise AssertionError(f"fetched {url}; the cache should have answered")


def test_recorded_yahoo_charts_read_exactly_like_an_import(tmp_path: Path) -> None:
    from core.market.sources import build_market_dataset

    fetch = Recorded()
    out = tmp_path / "prices.csv"
    result = download_prices(
        ["^GSPC", "^IXIC"], *PRICE_SPAN, out=out, cache_dir=tmp_path / "cache", fetch=fetch
    )
    data, _ = import_market([out])
    pd.testing.assert_frame_equal(result.frame, data.prices)
    assert len(fetch.urls) == 2 and "period1=1475280000" in fetch.urls[0]  # 2016-10-01 UTC
    gspc = result.frame[result.frame["ticker"] == "^GSPC"].set_index("date")
    assert gspc.index[0] == pd.Timestamp("2016-10-03"), "dated by New York's day"
    assert gspc.loc["2017-01-03", "close"] == pytest.approx(2257.830078125)
    assert pd.Timestamp("2017-06-14") not in gspc.index, "Yahoo's null bar is dropped"
    assert len(gspc) == 334 and result.notes[0].startswith("^GSPC: 334 daily bars https://")
    # Downloaded prices for 2016-2018 get the bundled macro context, observed on every row.
    dataset = build_market_dataset(data)
    assert len(dataset) > 100 and (dataset["mask_macro"] == 1).all()


def test_yahoo_bars_take_the_exchange_calendar_day() -> None:
    """A Tokyo bar stamped 23:00 UTC on 19 April is the 20 April session."""
    body = {
        "chart": {
            "result": [
                {
                    "meta": {"symbol": "^N225", "exchangeTimezoneName": "Asia/Tokyo"},
                    "timestamp": [1524178800, 1524265200],
                    "indicators": {
                        "quote": [
                            {
                                "open": [22100.0, None],
                                "high": [22200.5, 22300.0],
                                "low": [22000.25, 22100.0],
                                "close": [22162.24, 22200.0],
                                "volume": [71200000, 70000000],
                            }
                        ]
                    },
                }
            ],
            "error": None,
        }
    }
    frame = parse_yahoo_chart(json.dumps(body).encode(), "^N225")
    assert frame["date"].tolist() == ["2018-04-20"], "the bar with a null open is dropped"
    assert list(frame.columns) == ["date", "ticker", "open", "high", "low", "close", "volume"]


def test_a_yahoo_error_is_named_and_never_cached(tmp_path: Path) -> None:
    error = (RECORDED / "yahoo_chart_error.json").read_bytes()
    with pytest.raises(DownloadFailed, match="NOPE: Yahoo answered: No data found"):
        download_prices(
            ["NOPE"], *PRICE_SPAN, out=tmp_path / "p.csv", cache_dir=tmp_path, fetch=lambda u: error
        )
    assert not (tmp_path / "yahoo").exists() and not (tmp_path / "p.csv").exists()


def test_a_bad_bar_in_a_response_is_left_out_or_refused_under_strict(tmp_path: Path) -> None:
    chart = json.loads((RECORDED / "yahoo_chart_IXIC.json").read_bytes())
    quote = chart["chart"]["result"][0]["indicators"]["quote"][0]
    quote["high"][5] = quote["low"][5] / 2

    def download(options: ImportOptions):
        return download_prices(
            ["^IXIC"],
            *PRICE_SPAN,
            out=tmp_path / "prices.csv",
            cache_dir=tmp_path / "cache",
            fetch=lambda url: json.dumps(chart).encode(),
            options=options,
        )

    with pytest.raises(ImportFailed, match=r"prices.csv, line 7, column 'high': high is below"):
        download(ImportOptions(strict=True))
    result = download(ImportOptions())
    assert "prices.csv: 1 row left out, high below low (line 7)" in result.warnings
    assert len(result.frame) == len(quote["high"]) - 1


def test_recorded_fred_series_read_like_an_import_and_keep_their_release_lags(
    tmp_path: Path,
) -> None:
    from core.market.bundled import bundled_macro_series
    from core.market.context import MACRO_FEATURES, macro_features

    fetch = Recorded()
    out = tmp_path / "macro.csv"
    result = download_macro(
        list(FRED_SERIES), *MACRO_SPAN, out=out, cache_dir=tmp_path / "cache", fetch=fetch
    )
    pd.testing.assert_frame_equal(result.frame, read_macro_series(out))
    assert [parse_qs(urlparse(u).query)["id"][0] for u in fetch.urls] == list(FRED_SERIES.values())
    counts = result.frame["series"].value_counts()
    assert counts["cpi"] == 47 and counts["aaa"] == 48
    oil = (RECORDED / "fred_DCOILWTICO.csv").read_text().splitlines()[1:]  # old style: "."
    vix = (RECORDED / "fred_VIXCLS.csv").read_text().splitlines()[1:]  # new style: empty
    assert counts["oil"] == len(oil) - sum(line.endswith(",.") for line in oil) == 751
    assert counts["vix"] == len(vix) - sum(line.endswith(",") for line in vix) == 754
    # Same observations as the bundled series (both from FRED), so the same features, with
    # the release lags: June 2016's CPI print is known on Monday 18 July, not on the 15th.
    downloaded = macro_features(result.frame).set_index("date")
    bundled = macro_features(bundled_macro_series()).set_index("date")
    for day in ["2016-07-15", "2016-07-18", "2017-06-01", "2018-10-01"]:
        assert downloaded.loc[day, MACRO_FEATURES].notna().all()
        np.testing.assert_allclose(
            downloaded.loc[day, MACRO_FEATURES].to_numpy(dtype=float),
            bundled.loc[day, MACRO_FEATURES].to_numpy(dtype=float),
        )
    assert downloaded.loc["2016-07-15", "infl_yoy"] != downloaded.loc["2016-07-18", "infl_yoy"]


def test_a_response_that_is_not_the_series_asked_for_is_refused(tmp_path: Path) -> None:
    for body, expected in [
        (b"<html>Service unavailable</html>", "not a FRED CSV of VIXCLS"),
        (b"observation_date,VIXCLS_20240102\n2024-01-02,13.2\n", "not a FRED CSV of VIXCLS"),
    ]:
        with pytest.raises(DownloadFailed, match=expected):
            download_macro(
                ["vix"],
                *MACRO_SPAN,
                out=tmp_path / "m.csv",
                cache_dir=tmp_path,
                fetch=lambda url, body=body: body,
            )
    with pytest.raises(DownloadFailed, match="unknown macro series gdp"):
        download_macro(["gdp"], *MACRO_SPAN, out=tmp_path / "m.csv", cache_dir=tmp_path)


def test_responses_are_cached_by_request_and_reused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = download_macro(
        ["vix", "cpi"], *MACRO_SPAN, out=tmp_path / "a.csv", cache_dir=cache, fetch=Recorded()
    )
    assert sorted(p.name.rsplit("-", 1)[0] for p in (cache / "fred").iterdir()) == [
        "CPILFESL_2015-01-01_2018-12-31",
        "VIXCLS_2015-01-01_2018-12-31",
    ]
    again = download_macro(
        ["vix", "cpi"], *MACRO_SPAN, out=tmp_path / "b.csv", cache_dir=cache, fetch=refuse
    )
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert all("from the cache" in note for note in again.notes)
    other = Recorded()
    download_macro(
        ["vix"], "2016-01-01", "2018-12-31", out=tmp_path / "c.csv", cache_dir=cache, fetch=other
    )
    assert len(other.urls) == 1, "another span is another request"
    shorter = pd.read_csv(tmp_path / "c.csv")
    assert shorter["date"].min() >= "2016-01-01"


def test_downloads_are_off_unless_the_environment_allows_them(monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with pytest.raises(DownloadsDisabled, match=f"Set {ALLOW_ENV}=1"):
        http_fetch(fred_csv_url("VIXCLS", *MACRO_SPAN))
    monkeypatch.setenv(ALLOW_ENV, "yes")
    with pytest.raises(DownloadsDisabled):
        http_fetch(yahoo_chart_url("AAPL", *PRICE_SPAN))


def _prefill_cache(home: Path) -> None:
    """Put the recorded responses where `trendlab data download` looks for its cache."""
    cache = home / "cache" / "downloads"
    for symbol in ("^GSPC", "^IXIC"):
        url = yahoo_chart_url(symbol, *PRICE_SPAN)
        path = cache_path(cache, "yahoo", f"{symbol}_{'_'.join(PRICE_SPAN)}", url, "json")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(recorded_file(url), path)
    for series_id in FRED_SERIES.values():
        url = fred_csv_url(series_id, *MACRO_SPAN)
        path = cache_path(cache, "fred", f"{series_id}_{'_'.join(MACRO_SPAN)}", url, "csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(recorded_file(url), path)


def test_cli_download_says_how_to_enable_it_then_uses_the_cache(
    data_home, tmp_path: Path, monkeypatch
) -> None:
    from cli import app

    monkeypatch.delenv(ALLOW_ENV, raising=False)
    runner = CliRunner()
    prices, macro = tmp_path / "prices.csv", tmp_path / "macro.csv"
    start, end = (f"--start={day}" for day in PRICE_SPAN)
    refused = runner.invoke(
        app, ["data", "download", "prices", "^GSPC", start, end.replace("start", "end")]
    )
    assert refused.exit_code == 1 and f"Set {ALLOW_ENV}=1" in refused.output
    _prefill_cache(data_home.root)
    got = runner.invoke(
        app,
        [
            "data",
            "download",
            "prices",
            "^GSPC,^IXIC",
            start,
            end.replace("start", "end"),
            "--out",
            str(prices),
        ],
    )
    assert got.exit_code == 0, got.output
    assert "^GSPC: 334 daily bars from the cache" in got.output
    assert f"Wrote {prices}: 669 rows of 2 tickers, 2016-10-03 to 2018-01-31" in got.output
    got = runner.invoke(
        app,
        [
            "data",
            "download",
            "macro",
            "--start",
            MACRO_SPAN[0],
            "--end",
            MACRO_SPAN[1],
            "--out",
            str(macro),
        ],
    )
    assert got.exit_code == 0, got.output
    imported = runner.invoke(
        app, ["data", "import", "indices", "--prices", str(prices), "--macro", str(macro)]
    )
    assert imported.exit_code == 0, imported.output
    assert "Macro context: your file macro.csv" in imported.output
    shown = json.loads(runner.invoke(app, ["data", "show", "indices", "--json"]).output)
    assert shown["recipe"]["macro"]["source"] == "file"
    assert shown["coverage"]["overall"] == {"news": 0.0, "policy": 0.0, "macro": 1.0}


def test_data_update_download_fetches_the_newer_prices_of_the_datasets_tickers(
    data_home, tmp_path: Path, monkeypatch
) -> None:
    """Issue 25: `data update NAME --download` asks Yahoo (here: the recorded responses in
    the cache) for each of the dataset's tickers from the day after its last date."""
    from cli import app

    runner = CliRunner()
    _prefill_cache(data_home.root)
    prices = tmp_path / "prices.csv"
    start, end = PRICE_SPAN
    monkeypatch.setenv(ALLOW_ENV, "1")
    got = runner.invoke(
        app,
        [
            "data",
            "download",
            "prices",
            "^GSPC,^IXIC",
            f"--start={start}",
            f"--end={end}",
            "--out",
            str(prices),
        ],
    )
    assert got.exit_code == 0, got.output
    early = pd.read_csv(prices)
    early[early["date"] <= "2017-11-30"].to_csv(tmp_path / "early.csv", index=False)
    imported = runner.invoke(
        app, ["data", "import", "indices", "--prices", str(tmp_path / "early.csv")]
    )
    assert imported.exit_code == 0, imported.output
    cache = data_home.root / "cache" / "downloads"
    for symbol in ("^GSPC", "^IXIC"):  # the update's requests, answered by the recording
        url = yahoo_chart_url(symbol, "2017-11-23", end)  # a week of overlap
        path = cache_path(cache, "yahoo", f"{symbol}_2017-11-23_{end}", url, "json")
        shutil.copy(recorded_file(url), path)
    updated = runner.invoke(
        app, ["data", "update", "indices", "--download", f"--end={end}", "--json"]
    )
    assert updated.exit_code == 0, updated.output
    result = json.loads(updated.stdout)
    assert result["end_after"] == "2018-01-31" and result["archived_as"] == "indices@v1"
    assert result["replaced_price_rows"] == 2 * 5 and result["rescaled"] == {}
    assert "^GSPC: " in updated.output and "from the cache" in updated.output
    neither = runner.invoke(app, ["data", "update", "indices"])
    assert neither.exit_code == 1 and "either --prices FILE or --download" in neither.output
