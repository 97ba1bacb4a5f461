"""Experiments: one run per seed from the CLI, their mean and spread on the Evaluate page, and
the verdict of the mean of their models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from cli import app
from storage import DataHome, open_engine
from tests.pages.conftest import store_small_dataset

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "evaluate.py")


def test_seeds_make_one_experiment_that_evaluate_summarises(data_home: DataHome) -> None:
    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    engine.dispose()
    command = ["train", "compact_dual_tower", "--dataset", "small", "--epochs", "1"]
    result = CliRunner().invoke(
        app, [*command, "--seeds", "2", "--baselines", "majority", "--json", "-q"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["run_id"] for r in report["runs"]] == [1, 2]
    spread = report["over_seeds"]["7d"]["pearson"]
    values = [r["test"]["7d"]["pearson"] for r in report["runs"]]
    assert spread["mean"] == sum(values) / 2 and spread["runs"] == 2
    half = stats.t.ppf(0.975, 1) * spread["std"] / 2**0.5  # the mean's interval over 2 seeds
    assert spread["low"] == pytest.approx(spread["mean"] - half)
    assert spread["high"] == pytest.approx(spread["mean"] + half)
    # three tickers: the pooled correlation and the per-ticker portfolio that trades it
    assert "sharpe_time_series" in report["over_seeds"]["7d"]
    assert "sharpe_market_neutral" not in report["over_seeds"]["7d"]

    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["run"] = "1"
    at.run()
    assert not at.exception, at.exception
    assert any(
        m.value.startswith(f"**Experiment {report['experiment']}**: runs 2, 1")
        or m.value.startswith(f"**Experiment {report['experiment']}**: runs 1, 2")
        for m in at.markdown
    )
    over_seeds = next(d.value for d in at.dataframe if "figure" in d.value.columns)
    row = over_seeds[(over_seeds["horizon"] == "7d") & (over_seeds["figure"] == "pearson")]
    assert row["mean"].iloc[0] == spread["mean"] and row["high"].iloc[0] == spread["high"]
    verdict = report["mean"]["uncertainty"]["verdict"]["sentence"]
    shown = [b.value for b in (*at.info, *at.warning) if "experiment's verdict" in b.value]
    assert shown == [
        f"**The experiment's verdict** (the mean of its 2 models judged as one on "
        f"{report['mean']['rows']:,} test rows): {verdict}."
    ], "the verdict `train --seeds` printed"


def test_evaluate_queues_a_walk_forward_and_shows_its_folds(data_home: DataHome) -> None:
    from services import catalog
    from services.market.evaluation import record_walk_forward
    from tests.pages.conftest import train_tiny

    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["run"] = str(run_id)
    at.run()
    at.button(key=f"wf-{run_id}").click().run()
    assert not at.exception, at.exception
    queued = catalog.jobs(engine=engine, kind="walk_forward")
    assert [(j.run_id, j.request["folds"]) for j in queued] == [(run_id, 3)]

    fold = {
        "test_start": "2020-01-02",
        "test_end": "2020-06-30",
        "test_rows": 360,
        "reports": {
            name: {
                h: {"regression": {"pearson": value}, "finance": {"rank_ic": value / 2}}
                for h in ("7d", "30d")
            }
            for name, value in (("model", 0.2), ("linear", 0.1))
        },
    }
    record_walk_forward(engine=engine, run_id=run_id, result={"folds": [fold, fold]})
    engine.dispose()
    at.run()
    table = next(d.value for d in at.dataframe if "fold" in d.value.columns)
    assert list(table["fold"]) == [1, 1, 2, 2]
    assert list(table["predictor"]) == ["model", "linear"] * 2
    assert table.loc[0, "7d corr"] == 0.2 and table.loc[1, "30d rank IC"] == 0.05
