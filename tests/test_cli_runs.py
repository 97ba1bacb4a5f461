"""`trendlab runs list` over both kinds of run (issue 23, item 10)."""

from __future__ import annotations

import json

from sqlalchemy import Engine
from typer.testing import CliRunner

from cli import app
from storage.models import JobStatus
from storage.repository import create_run, session_scope, set_run_status

runner = CliRunner()


def _finished(engine: Engine, model: str, test: dict) -> int:
    with session_scope(engine) as session:
        run = create_run(session=session, model_kind=model, config={}, seed=1)
        set_run_status(
            session=session,
            run_id=run.id,
            status=JobStatus.SUCCEEDED,
            summary_metrics={"test": test},
        )
        return run.id


def test_runs_list_shows_a_recommender_run_beside_a_market_run(engine: Engine) -> None:
    market = _finished(engine, "dual_tower", {"7d": {"pearson": 0.125, "mae": 0.3}})
    recommender = _finished(engine, "two_tower", {"recall@10": 0.25, "ndcg@10": 0.1875})
    engine.dispose()  # the CLI opens the file itself
    result = runner.invoke(app, ["runs", "list"])
    assert result.exit_code == 0, result.output
    lines = {int(line.split()[0]): line for line in result.output.splitlines()}
    assert "test corr 7d 0.125" in lines[market]
    assert "test ndcg@10 0.188" in lines[recommender]
    listed = json.loads(runner.invoke(app, ["runs", "list", "--json"]).output)
    assert [r["run_id"] for r in listed] == [recommender, market]


def test_runs_list_shows_a_run_without_test_figures(engine: Engine) -> None:
    run = _finished(engine, "two_tower", {})
    engine.dispose()
    result = runner.invoke(app, ["runs", "list"])
    assert result.exit_code == 0, result.output
    assert result.output.split()[:3] == [str(run), "two_tower", "succeeded"]
