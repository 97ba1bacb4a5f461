"""`trendlab data import` and `data update` on price files as they come: what they left out,
what `--strict` refuses, and tickers an update brings that the dataset does not have."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from storage import DataHome
from tests.core.conftest import make_prices

runner = CliRunner()


def _prices(tickers: list[str], days: int, seed: int = 4) -> pd.DataFrame:
    frame = make_prices(tickers, days, seed=seed)
    return frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d"))


def _set(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


def _one_ticker(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    return frame[frame["ticker"] == ticker].drop(columns="ticker").reset_index(drop=True)


def _files_as_they_come(folder: Path) -> list[Path]:
    """Four one-ticker files: AAA with a zero close (line 6) and high below low (line 11),
    BBB (a ``Symbol`` column) with a date repeated at its end, CCC with 100 rows only, and
    DDD (a ``Name`` column) with empty open, high and low on line 9."""
    folder.mkdir()
    frame = _prices(["AAA", "BBB", "DDD"], 300)
    aaa = _set(_set(_one_ticker(frame, "AAA"), 4, "close", 0.0), 9, "high", 0.01)
    bbb = _one_ticker(frame, "BBB").assign(Symbol="BBB")
    bbb = pd.concat([bbb, bbb.iloc[[20]].assign(volume=7.0)], ignore_index=True)
    ccc = _one_ticker(_prices(["CCC"], 100, seed=5), "CCC")
    ddd = _one_ticker(frame, "DDD").assign(Name="DDD")
    for column in ["open", "high", "low"]:
        ddd = _set(ddd, 7, column, "")
    paths = []
    for name, rows in {"AAA": aaa, "BBB": bbb, "CCC": ccc, "DDD": ddd}.items():
        paths.append(folder / f"{name}.csv")
        rows.to_csv(paths[-1], index=False)
    return paths


def test_files_as_they_come_import_and_the_output_lists_what_was_left_out(
    data_home: DataHome, tmp_path: Path
) -> None:
    paths = _files_as_they_come(tmp_path / "prices")
    # --prices followed by every file, as a shell glob (prices/*.csv) writes it
    result = runner.invoke(app, ["data", "import", "mine", "--prices", *map(str, paths)])
    assert result.exit_code == 0, result.output
    assert "Left out 4 rows and 1 ticker (CCC); 3 tickers imported" in result.output
    assert (
        "  AAA.csv: 2 rows left out: 1 zero or negative price (line 6), 1 high below low (line 11)"
    ) in result.output
    assert (
        "  BBB.csv: 1 row left out, repeated (date, ticker), the last complete row kept (line 22)"
    ) in result.output
    assert "  CCC.csv: ticker CCC left out: 100 rows; 282 needed" in result.output
    assert "  DDD.csv: 1 row left out, missing price (line 9)" in result.output
    shown = json.loads(runner.invoke(app, ["data", "show", "mine", "--json"]).output)
    assert shown["tickers"] == ["AAA", "BBB", "DDD"]
    assert shown["recipe"]["left_out"]["tickers"] == {"CCC": {"rows": 100, "files": "CCC.csv"}}
    assert shown["recipe"]["left_out"]["rows"]["AAA.csv"] == {
        "zero or negative price": 1,
        "high below low": 1,
    }


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("AAA.csv", "AAA.csv, line 6, column 'close': 0 must be between 1e-06 and 1e+12"),
        ("AAA.csv", "AAA.csv, line 11, column 'high': high is below low"),
        ("BBB.csv", "BBB.csv, line 22, column 'date': duplicate (date, ticker)"),
        ("CCC.csv", "CCC.csv, column 'ticker': ticker CCC has 100 rows; at least 282"),
        ("DDD.csv", "DDD.csv, line 9, column 'open': '' is not a finite number"),
    ],
    ids=["zero-price", "high-below-low", "repeated-date", "short-history", "empty-prices"],
)
def test_strict_refuses_each_case_and_stores_nothing(
    data_home: DataHome, tmp_path: Path, file: str, expected: str
) -> None:
    paths = _files_as_they_come(tmp_path / "prices")
    chosen = [path for path in paths if path.name == file]
    result = runner.invoke(
        app, ["data", "import", "mine", "--strict", "--prices", *map(str, chosen)]
    )
    assert result.exit_code == 1
    assert "The import failed; nothing was stored." in result.output
    assert expected in result.output
    assert json.loads(runner.invoke(app, ["info", "--json"]).output)["datasets"] == 0


def test_nothing_left_is_refused_and_stores_nothing(data_home: DataHome, tmp_path: Path) -> None:
    paths = _files_as_they_come(tmp_path / "prices")
    ccc = [path for path in paths if path.name == "CCC.csv"]
    result = runner.invoke(app, ["data", "import", "mine", "--prices", *map(str, ccc)])
    assert result.exit_code == 1
    assert "CCC.csv: nothing is left to import" in result.output
    assert "CCC.csv: ticker CCC left out: 100 rows" in result.output
    assert json.loads(runner.invoke(app, ["info", "--json"]).output)["datasets"] == 0


def test_an_update_warns_about_new_tickers_and_adds_them_only_when_asked(
    data_home: DataHome, tmp_path: Path
) -> None:
    frame = _prices(["AAA", "BBB", "CCC"], 320)
    dates = sorted(frame["date"].unique())
    first, later = frame[frame["date"] <= dates[299]], frame[frame["date"] > dates[299]]
    stored = tmp_path / "stored.csv"
    first[first["ticker"] != "CCC"].to_csv(stored, index=False)
    assert runner.invoke(app, ["data", "import", "mine", "--prices", str(stored)]).exit_code == 0

    newer = tmp_path / "newer.csv"
    later[later["ticker"] == "BBB"].to_csv(newer, index=False)
    renamed = tmp_path / "AAA.new.csv"  # no ticker column: the file names it "AAA.NEW"
    _one_ticker(later, "AAA").to_csv(renamed, index=False)
    warned = runner.invoke(app, ["data", "update", "mine", "--prices", str(newer), str(renamed)])
    assert warned.exit_code == 0, warned.output
    assert (
        "warning: left out tickers 'mine' does not have: AAA.NEW (20 rows); add them with "
        "--new-tickers"
    ) in warned.stderr
    shown = json.loads(runner.invoke(app, ["data", "show", "mine", "--json"]).output)
    assert shown["tickers"] == ["AAA", "BBB"], "AAA.NEW was not added"
    assert shown["recipe"]["updates"][-1]["new_tickers"] == {"AAA.NEW": 20}
    assert shown["recipe"]["updates"][-1]["new_tickers_added"] is False
    update = shown["recipe"]["updates"][-1]
    assert update["through"] == dates[-1] and update["price_rows"] == 20, "BBB's were added"

    only_new = tmp_path / "ccc.csv"
    frame[frame["ticker"] == "CCC"].to_csv(only_new, index=False)
    refused = runner.invoke(app, ["data", "update", "mine", "--prices", str(only_new)])
    assert refused.exit_code == 1
    assert "Every price row of the update is of tickers 'mine' does not have: CCC (320 rows)" in (
        refused.output
    )
    after_refusal = json.loads(runner.invoke(app, ["data", "show", "mine", "--json"]).output)
    assert after_refusal["recipe"].get("version") == 2, "the refusal stored no version"

    added = runner.invoke(
        app, ["data", "update", "mine", "--prices", str(only_new), "--new-tickers"]
    )
    assert added.exit_code == 0, added.output
    assert "Added tickers 'mine' did not have: CCC (320 rows)." in added.stderr
    shown = json.loads(runner.invoke(app, ["data", "show", "mine", "--json"]).output)
    assert shown["tickers"] == ["AAA", "BBB", "CCC"]


def test_an_update_leaves_out_bad_rows_unless_strict(data_home: DataHome, tmp_path: Path) -> None:
    frame = _prices(["AAA"], 310)
    stored, newer = tmp_path / "stored.csv", tmp_path / "newer.csv"
    frame.iloc[:300].to_csv(stored, index=False)
    _set(frame.iloc[300:], 2, "low", -1.0).to_csv(newer, index=False)
    assert runner.invoke(app, ["data", "import", "mine", "--prices", str(stored)]).exit_code == 0
    strict = runner.invoke(app, ["data", "update", "mine", "--prices", str(newer), "--strict"])
    assert strict.exit_code == 1
    assert "newer.csv, line 4, column 'low': -1 must be between" in strict.output
    updated = runner.invoke(app, ["data", "update", "mine", "--prices", str(newer), "--json"])
    assert updated.exit_code == 0, updated.output
    assert "newer.csv: 1 row left out, zero or negative price (line 4)" in updated.stderr
    result = json.loads(updated.stdout)
    assert result["price_rows"] == 9 and result["version"] == 2
    assert result["files_left_out"]["rows"] == {"newer.csv": {"zero or negative price": 1}}


def test_a_parquet_bomb_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    """Issue 41, item 2: 1.9M rows x 7 dictionary-encoded 300-character strings (450 kB on
    disk, 4 GB once decoded) took 98 s and 5 GB and listed 11.4 million problems; now one
    sentence, refused before decoding: the whole command's peak stays far below what
    decoding would take (about 290 MB here against 4 GB). Its time, about 2 s here, is the
    bench case data.parquet_bomb_refused (a timed test would fail on a busy machine)."""
    from tests.core.test_table_files import _repeated_strings_parquet

    columns = ["date", "ticker", "open", "high", "low", "close", "volume"]
    bomb = _repeated_strings_parquet(tmp_path / "bomb.parquet", 1_900_000, columns, 300)
    assert bomb.stat().st_size < 1024**2
    peak = (  # VmHWM: this process's own peak (ru_maxrss would carry over pytest's, from the fork)
        "import re, sys\n"
        "from cli import app\n"
        "try:\n    app()\n"
        "finally:\n"
        "    status = open('/proc/self/status').read()\n"
        "    print('peak', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", peak, "data", "import", "bomb", "--prices", str(bomb)],
        env={**os.environ, "TRENDLAB_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    peak_mb = int(done.stderr.split("peak ")[-1]) / 1024
    assert done.returncode == 1, done.stderr
    assert "more than 256 MB of text once decoded" in done.stderr
    assert done.stderr.count("bomb.parquet") == 1, "one problem, not millions"
    assert "Traceback" not in done.stderr
    assert peak_mb < 1500, f"{peak_mb:.0f} MB: decoded, not refused from the metadata"
