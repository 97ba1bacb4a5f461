"""The data home under concurrent requests: checked once, never written by request handling."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from services.database import data_home
from storage import DataHome, DataHomeError


def test_threads_checking_one_home_at_once_all_succeed(tmp_path: Path) -> None:
    home = DataHome(tmp_path / "home")
    threads, rounds = 16, 40
    barrier = threading.Barrier(threads)
    errors: list[Exception] = []

    def check() -> None:
        for _ in range(rounds):
            barrier.wait()
            try:
                home.ensure()
            except DataHomeError as error:
                errors.append(error)

    workers = [threading.Thread(target=check) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert sorted(p.name for p in home.root.iterdir()) == ["checkpoints", "jobs", "logs", "uploads"]


def test_request_handling_never_writes_to_a_checked_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENDLAB_HOME", str(tmp_path / "home"))
    first = data_home()  # the start-up check
    before = sorted(p.name for p in first.root.iterdir())

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a request wrote to the data home")

    monkeypatch.setattr(Path, "write_text", refuse)
    monkeypatch.setattr(Path, "mkdir", refuse)
    monkeypatch.setattr(Path, "unlink", refuse)
    for _ in range(3):
        assert data_home() == first
    assert sorted(p.name for p in first.root.iterdir()) == before


def test_a_home_removed_after_its_check_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENDLAB_HOME", str(tmp_path / "home"))
    home = data_home()
    for folder in (home.checkpoints, home.uploads, home.jobs, home.logs):
        folder.rmdir()
    home.root.rmdir()
    assert data_home().uploads.is_dir()


def test_a_home_that_cannot_be_written_is_still_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("TRENDLAB_HOME", str(blocker / "home"))
    with pytest.raises(DataHomeError, match="TRENDLAB_HOME"):
        data_home()


def test_messages_show_paths_relative_to_the_data_home(tmp_path: Path) -> None:
    """Issue 41, item 11: errors named the server's absolute paths."""
    home = DataHome(tmp_path / "home")
    inside = home.checkpoints / "run_1" / "best.pt"
    assert home.relative(inside) == "checkpoints/run_1/best.pt"
    assert home.relative(tmp_path / "elsewhere" / "x.csv") == "x.csv"
    assert home.without_root(f"{inside} is missing; {home.root} is full") == (
        "checkpoints/run_1/best.pt is missing; the data home is full"
    )
