"""Staged uploads leave nothing in the uploads folder, and start-up removes only what a killed
process of this machine left (issue 23)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import DataHome
from storage.data_home import checked_home
from storage.uploads import STAGING_PATTERN, host_name, remove_stale_uploads, staged_uploads

TOKEN = "0123456789abcdef0123456789abcdef"


def _gone_pid() -> int:
    """The id of a process that has ended."""
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(ended.stdout)


def _leftover(home: DataHome, host: str, pid: int) -> Path:
    folder = home.uploads / f"import-{host}-{pid}-{TOKEN}"
    (folder / "prices").mkdir(parents=True)
    (folder / "prices" / "prices.csv").write_text("date\n")
    return folder


def test_staged_files_are_removed_when_the_import_returns_or_raises(tmp_path: Path) -> None:
    home = DataHome(tmp_path).ensure()
    files = {"prices": [("a.csv", b"1"), ("../b.csv", b"2")], "news": [("n.csv", b"3")]}
    with staged_uploads(home, files) as folder:
        assert STAGING_PATTERN.fullmatch(folder.name), folder.name
        assert sorted(p.name for p in (folder / "prices").iterdir()) == ["a.csv", "b.csv"]
        assert (folder / "news" / "n.csv").read_bytes() == b"3"
    assert list(home.uploads.iterdir()) == []
    with pytest.raises(RuntimeError), staged_uploads(home, files):
        raise RuntimeError("the import failed")
    assert list(home.uploads.iterdir()) == []


def test_a_write_that_fails_half_way_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = DataHome(tmp_path).ensure()
    write_bytes = Path.write_bytes

    def disk_full(path: Path, data: bytes) -> int:
        if path.name == "second.csv":
            raise OSError(28, "No space left on device")
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    files = {"prices": [("first.csv", b"1"), ("second.csv", b"2")]}
    with pytest.raises(OSError, match="No space"), staged_uploads(home, files):
        pass
    assert list(home.uploads.iterdir()) == []


def test_only_folders_of_gone_processes_of_this_machine_are_removed(tmp_path: Path) -> None:
    home = DataHome(tmp_path).ensure()
    gone = _gone_pid()
    stale = _leftover(home, host_name(), gone)
    running = _leftover(home, host_name(), os.getpid())
    elsewhere = _leftover(home, "another.host", gone)
    other = home.uploads / "notes.txt"
    other.write_text("not a staging folder")
    assert remove_stale_uploads(home) == [stale]
    assert sorted(home.uploads.iterdir()) == sorted([running, elsewhere, other])


def test_the_first_check_of_the_home_removes_a_killed_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENDLAB_HOME", str(tmp_path / "home"))
    stale = _leftover(DataHome.from_env().ensure(), host_name(), _gone_pid())
    checked_home()
    assert not stale.exists()
