"""Issue 36 end to end: on a market where a model gets the dates' common moves right and the
order of tickers on a date reversed, the CLI, its JSON and the Evaluate page all say the
model does not beat its baselines, and why; `trendlab evaluate` reads the stored evaluation
back instead of refitting the baselines (issue 37)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from cli import app
from core.checkpoints import load_checkpoint
from core.market.config import DataConfig
from core.market.evaluation import BASELINES, judge_predictions
from core.market.models import model_spec
from core.market.sources import synthetic_data
from core.market.training import restore_from_checkpoint
from services.datasets import save_market_dataset
from services.market.evaluation import run_dataset, save_evaluation
from services.market.runs import execute_run, start_run
from services.runs import checkpoint_path
from storage import DataHome, open_engine

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "evaluate.py")
TICKERS = [f"W{i:02d}" for i in range(24)]


def _reversed_run(home: DataHome) -> int:
    """A compact dual tower trained on 24 tickers (raw trend labels), whose stored evaluation
    is then that of a 'model' scoring the test rows with next week's date effect right and
    each ticker's own move reversed, judged through the product's path."""
    engine = open_engine(home.database_url)
    data = synthetic_data(TICKERS, "2016-01-01", "2020-12-31", seed=4, signal=True, horizons=[7])
    config = DataConfig(tickers=TICKERS, horizons=[7], cross_sectional="off")
    save_market_dataset(engine=engine, name="wide", data=data, config=config, description="")
    spec = model_spec("compact_dual_tower")
    run_id = start_run(
        engine=engine,
        model_name="compact_dual_tower",
        dataset_name="wide",
        training=spec.training_config_class.from_dict(
            {"epochs": 1, "batch_size": 512, "scheduler": {"warmup_epochs": 0}}, partial=True
        ),
        model_config=spec.config_class.from_dict({"tower_dim": 8}, partial=True),
        baselines=["majority"],
    )
    execute_run(engine=engine, home=home, run_id=run_id, device="cpu")
    path = checkpoint_path(engine=engine, run_id=run_id)
    frame = run_dataset(engine=engine, run_id=run_id)
    restored = restore_from_checkpoint(load_checkpoint(path), frame)
    rows = restored.loaders.test.meta[["date", "ticker"]].merge(frame, on=["date", "ticker"])
    common = rows.groupby("date")["fwd_return_7d"].transform("mean")
    score = np.tanh((common - 0.05 * (rows["fwd_return_7d"] - common)).to_numpy() / 0.02)
    predicted = rows[["date", "ticker"]].assign(
        score_7d=score, class_7d=np.select([score < -0.3, score > 0.3], [0, 2], 1)
    )
    evaluation = judge_predictions(
        restored.spec, predicted, restored.loaders, frame, baselines=BASELINES
    )
    save_evaluation(evaluation, path.parent)
    engine.dispose()
    return run_id


def test_dates_right_order_reversed_is_not_beats_on_the_cli_json_and_page(
    data_home: DataHome, monkeypatch
) -> None:
    run_id = _reversed_run(data_home)
    runner = CliRunner()
    shown = runner.invoke(app, ["evaluate", str(run_id), "--json"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    judged = report["uncertainty"]
    model = report["reports"]["model"]["7d"]
    assert judged["primary"]["metric"] == "rank_ic", "24 tickers a date: a cross-section"
    assert model["regression"]["pearson"] > 0 and model["finance"]["rank_ic"] < 0
    assert model["finance"]["market_neutral"]["net_return"] < 0, "trading the order loses"
    assert judged["verdict"]["verdict"] != "beats", judged["verdict"]
    assert (
        "Why: at 7 days its pooled correlation with the target leads"
        in (judged["verdict"]["sentence"])
    )
    assert {"linear", "boosting", "oracle"} <= set(report["reports"])  # the stored ones:
    # the reversed scores exist only in the stored evaluation, so it was read back

    text = runner.invoke(app, ["evaluate", str(run_id)])
    assert text.exit_code == 0, text.output
    assert "order of tickers on a date, which is what a portfolio trades, wrong" in text.output
    assert "What it is for: Rank the day's tickers" in text.output

    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception, at.exception
    summary = next(e.value for e in [*at.info, *at.warning] if "trained" in e.value)
    verdict = summary.split("**Verdict:**")[1]
    assert not verdict.strip().startswith("the model beats")
    assert "its pooled correlation with the target leads" in verdict
    assert "market-neutral long/short on the day's order" in summary
