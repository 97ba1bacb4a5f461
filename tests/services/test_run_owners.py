"""services/run_owners.py: a stop that lands while a run's outcome is recorded waits for the
record, then stops the command."""

from __future__ import annotations

import signal
import threading

import pytest

from services.run_owners import stop_signals_held


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_during_the_record_waits_for_it_then_stops(stop: int) -> None:
    def stopped(number: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(number).name)

    before = signal.signal(signal.SIGTERM, stopped)
    # A test run started in the background inherits SIGINT ignored; Ctrl-C's own handler here
    interrupt = signal.signal(signal.SIGINT, signal.default_int_handler)
    steps: list[str] = []
    try:
        # SIGINT stops through Python's own handler, SIGTERM through the command's
        message = "SIGTERM" if stop == signal.SIGTERM else "^$"
        with pytest.raises(KeyboardInterrupt, match=message), stop_signals_held():
            signal.raise_signal(stop)
            steps.append("recorded")  # never reached when the stop is not held
        assert steps == ["recorded"]
        assert signal.getsignal(signal.SIGTERM) is stopped  # the command's handler is back
    finally:
        signal.signal(signal.SIGTERM, before)
        signal.signal(signal.SIGINT, interrupt)


def test_a_record_without_a_stop_changes_nothing() -> None:
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with stop_signals_held():
        recorded = True
    assert recorded
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_outside_the_main_thread_the_block_runs_as_it_is() -> None:
    seen: list[object] = []

    def record() -> None:
        with stop_signals_held():
            seen.append(signal.getsignal(signal.SIGINT))

    handler = signal.getsignal(signal.SIGINT)
    worker = threading.Thread(target=record)
    worker.start()
    worker.join()
    assert seen == [handler]
