"""Read-only mode and the brake on password guessing (issue 13, items 1 and 14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.recsys.config import recsys_configs
from core.recsys.synthetic import RecsysSpec, generate_recsys
from services.access import ReadOnlyError, Throttle
from services.jobs.manager import JobManager
from services.recsys.runs import train_recsys_run
from services.recsys.serving import active_run, set_active_run
from storage import DataHome, open_engine
from storage.recsys import save_recsys_dataset

ROOT = Path(__file__).resolve().parents[2]
TINY, TINY_TRAINING = recsys_configs({"hidden_dims": [8], "embedding_dim": 4, "epochs": 1})


@pytest.fixture
def two_recommenders(data_home: DataHome) -> tuple[int, int]:
    engine = open_engine(data_home.database_url)
    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=500, seed=5))
    save_recsys_dataset(engine=engine, name="rs", data=data, description="test")
    first, _ = train_recsys_run(
        engine=engine, home=data_home, dataset_name="rs", config=TINY, training=TINY_TRAINING
    )
    second, _ = train_recsys_run(
        engine=engine, home=data_home, dataset_name="rs", config=TINY, training=TINY_TRAINING
    )
    engine.dispose()
    return first, second


def test_read_only_refuses_choosing_the_served_recommender(
    data_home: DataHome, two_recommenders: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 1: Recommend -> Models -> "Serve this run" changed what the API served."""
    first, second = two_recommenders
    engine = open_engine(data_home.database_url)
    assert active_run(engine=engine) == second
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    with pytest.raises(ReadOnlyError, match="choosing which recommender serves"):
        set_active_run(engine=engine, run_id=first)
    assert active_run(engine=engine) == second
    at = AppTest.from_file(str(ROOT / "pages" / "recommend.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    assert "Serve this run" not in [b.label for b in at.button]
    engine.dispose()


def test_read_only_refuses_every_job_action_where_it_happens(
    engine, data_home: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job manager checks too, so a page that forgot to hide a button changes nothing."""
    manager = JobManager(engine=engine, home=data_home)
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    for action in (
        lambda: manager.submit_training(
            model_name="two_tower", dataset_name="rs", training=TINY_TRAINING, model_config=TINY
        ),
        lambda: manager.cancel(1),
        lambda: manager.resume(1),
    ):
        with pytest.raises(ReadOnlyError, match="Read-only deployment"):
            action()


def test_the_throttle_locks_a_client_out_after_five_failures_and_forgives_later() -> None:
    now = [0.0]
    throttle = Throttle(max_failures=5, window_s=60, lockout_s=60, clock=lambda: now[0])
    for _ in range(4):
        throttle.failed("10.0.0.1")
    assert throttle.wait_s("10.0.0.1") == 0, "four failures are allowed"
    throttle.failed("10.0.0.1")
    assert throttle.wait_s("10.0.0.1") == 60
    assert throttle.wait_s("10.0.0.2") == 0, "other clients are not affected"
    now[0] = 61
    assert throttle.wait_s("10.0.0.1") == 0
    throttle.failed("10.0.0.2")
    now[0] = 200
    for _ in range(4):
        throttle.failed("10.0.0.2")
    assert throttle.wait_s("10.0.0.2") == 0, "failures older than the window are forgotten"


def test_the_password_gate_locks_out_after_five_wrong_passwords(
    data_home: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 14: guessing was not slowed at all. The sixth try, even the right password,
    waits out the lockout."""
    from pages import access

    monkeypatch.setenv("TRENDLAB_PASSWORD", "s3cret")
    monkeypatch.setattr(access, "PASSWORD_GUESSES", Throttle())
    at = AppTest.from_function(_gated_page, default_timeout=60).run()
    for _ in range(5):
        at.text_input[0].input("wrong")
        at.button[0].click().run()
        assert "not right" in at.error[0].value
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert "Too many wrong passwords" in at.error[0].value
    assert not [m for m in at.markdown if m.value == "inside"], "still at the gate"


def _gated_page() -> None:
    import sys
    from pathlib import Path

    import streamlit as st

    sys.path.insert(0, str(Path.cwd()))  # AppTest runs this from a temporary file
    from pages.access import require_password

    require_password()
    st.markdown("inside")
