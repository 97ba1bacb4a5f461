"""services.built_once: concurrent first callers of one key share a single build."""

from __future__ import annotations

import threading
import time

import pytest

from services.built_once import built_once


def test_concurrent_first_calls_build_once_and_share_the_result() -> None:
    builds: list[str] = []

    @built_once(maxsize=4)
    def build(key: str) -> object:
        builds.append(key)
        time.sleep(0.2)  # long enough for every thread to arrive while it builds
        return object()

    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(build("a"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds == ["a"]
    assert len(results) == 8 and all(r is results[0] for r in results)
    assert build("b") is not results[0]
    assert builds == ["a", "b"]


def test_a_failed_build_is_not_kept() -> None:
    calls: list[int] = []

    @built_once(maxsize=2)
    def build(key: int) -> int:
        calls.append(key)
        if len(calls) == 1:
            raise OSError("disk hiccup")
        return key * 2

    with pytest.raises(OSError, match="disk hiccup"):
        build(3)
    assert build(3) == 6
    assert calls == [3, 3]


def test_the_start_up_warm_up_never_stops_the_server(monkeypatch, caplog) -> None:
    """services.recsys.serving.warm_serving: nothing to serve is quiet, anything else is logged."""
    import services.recsys.serving as recsys
    from storage import StorageError

    def nothing(**_) -> None:
        raise StorageError("No recommender dataset yet")

    def broken(**_) -> None:
        raise ValueError("an unreadable catalogue")

    monkeypatch.setattr(recsys, "load_serving", nothing)
    recsys.warm_serving(engine=None, home=None)
    assert not caplog.records
    monkeypatch.setattr(recsys, "load_serving", broken)
    recsys.warm_serving(engine=None, home=None)
    assert "an unreadable catalogue" in caplog.text
