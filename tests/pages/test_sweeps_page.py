"""Sweeps on the pages: the form under Train starts one; Evaluate shows a finished one."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from services.sweeps.study import sweeps
from storage import open_engine
from tests.sweeping import store_demo

PAGES = Path(__file__).resolve().parents[2] / "pages"


@pytest.mark.slow
def test_evaluate_shows_the_sweep_its_best_trial_importance_and_trials(swept, monkeypatch) -> None:
    _, home, _ = swept
    monkeypatch.setenv("TRENDLAB_HOME", str(home.root))
    monkeypatch.delenv("TRENDLAB_DB_URL", raising=False)
    monkeypatch.setenv("TRENDLAB_JOB_RUNNER", "0")
    at = AppTest.from_file(str(PAGES / "evaluate.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert [h.value for h in at.header] == ["Sweeps"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Status"] == "succeeded" and metrics["Trials"] == "8 of 8"
    assert int(metrics["Pruned"]) >= 1
    assert any(s.value.startswith("Best: trial") for s in at.subheader)
    keys = {chart.proto.id for chart in at.get("plotly_chart")}
    assert len(keys) >= 2, "importance and parallel coordinates"
    trials = at.dataframe[-1].value
    assert len(trials) == 8 and {"state", "val loss", "run"} <= set(trials.columns)
    assert any("/evaluate?run=" in m.value for m in at.markdown), "the comparison link"
    assert any(s.value == "Verdict over 8 tries" for s in at.subheader)
    verdict = next(m.value for m in at.markdown if m.value.startswith("**Verdict:**"))
    assert "the best of 8 trials" in verdict, verdict
    tries = next(d.value for d in at.dataframe if "SPA p-value" in d.value.columns)
    assert list(tries["horizon"]) == ["7d", "30d"]
    assert {"highest Sharpe", "deflated Sharpe", "PBO"} <= set(tries.columns)


@pytest.mark.slow
def test_the_comparison_view_names_the_model_confidence_set(swept, monkeypatch) -> None:
    _, home, _ = swept
    monkeypatch.setenv("TRENDLAB_HOME", str(home.root))
    monkeypatch.delenv("TRENDLAB_DB_URL", raising=False)
    monkeypatch.setenv("TRENDLAB_JOB_RUNNER", "0")
    at = AppTest.from_file(str(PAGES / "evaluate.py"), default_timeout=180)
    at.query_params["run"] = ["2", "3", "4"]
    at.run()
    assert not at.exception, at.exception
    lines = next(m.value for m in at.markdown if "Which runs are best" in m.value)
    assert lines.count("model confidence set holds") == 2 and "Diebold-Mariano run 2" in lines


def test_the_train_page_starts_a_sweep(data_home, monkeypatch) -> None:
    engine = open_engine(data_home.database_url)
    store_demo(engine)
    engine.dispose()
    at = AppTest.from_file(str(PAGES / "train.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    next(s for s in at.selectbox if s.label == "Sweep model").set_value("compact_dual_tower").run()
    at.number_input(key="sweep:trials").set_value(4)
    next(b for b in at.button if b.label == "Start sweep").click().run()
    assert not at.exception, at.exception
    assert any("Started sweep 1" in s.value for s in at.success), [e.value for e in at.error]
    engine = open_engine(data_home.database_url)
    assert sweeps(engine=engine) == [(1, "compact_dual_tower", "queued")]
    engine.dispose()


def test_read_only_hides_the_sweep_form(data_home, monkeypatch) -> None:
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    at = AppTest.from_file(str(PAGES / "train.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.label == "Start sweep"]
