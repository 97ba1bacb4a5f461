"""services/jobs/run_owners.py: a stop that lands while a run's outcome is recorded waits for the
record, then stops the command."""

from __future__ import annotations

import signal
import threading

import pytest

from services.jobs.run_owners import stop_signals_held


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


def test_a_run_stopped_by_a_signal_is_cancelled_even_when_the_stop_came_back_as_another_error(
    engine, monkeypatch
) -> None:
    """An interrupt that lands inside a database call can surface as an aborted transaction;
    the CLI records the signal, so the run is cancelled, not failed (CI saw 'failed')."""
    from services.jobs import run_owners
    from services.runs import train_here
    from storage.repository import create_run, get_run, session_scope

    with session_scope(engine) as session:
        first = create_run(session=session, model_kind="dual_tower", config={}, seed=1).id
        second = create_run(session=session, model_kind="dual_tower", config={}, seed=1).id

    def aborted() -> dict:
        raise RuntimeError("Current transaction is aborted (please ROLLBACK)")

    for run_id, stops in ((first, []), (second, [signal.SIGINT])):
        monkeypatch.setattr(run_owners, "STOPS", stops)
        with pytest.raises(RuntimeError):
            train_here(engine=engine, run_id=run_id, train=aborted, finish=lambda _: None)
    with session_scope(engine) as session:
        assert get_run(session=session, run_id=first).status == "failed"
        assert get_run(session=session, run_id=second).status == "cancelled"
