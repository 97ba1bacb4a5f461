"""`trendlab runs list` over both kinds of run (issue 23, item 10), and the runs a stopped
server's jobs left 'running' (issue 41, item 11)."""

from __future__ import annotations

import json
import subprocess

from sqlalchemy import Engine
from typer.testing import CliRunner

from cli import app
from services.run_owners import HOST
from storage import DataHome, open_engine
from storage.models import JobStatus
from storage.repository import (
    create_job,
    create_run,
    get_job,
    list_metrics,
    session_scope,
    set_run_status,
    update_job,
)

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


def test_a_job_left_running_by_a_stopped_server_is_marked_by_the_cli(
    engine: Engine, data_home: DataHome
) -> None:
    """Issue 41, item 11: with the server stopped and its worker killed, the job's run stayed
    'running' in `runs list` until a server started again; the CLI now recovers it as that
    server would, keeping the epochs the worker wrote."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    with session_scope(engine) as session:
        run = create_run(session=session, model_kind="dual_tower", config={}, seed=1)
        set_run_status(session=session, run_id=run.id, status=JobStatus.RUNNING)
        job = create_job(session=session, kind="train", run_id=run.id)
        update_job(session=session, job_id=job.id, status=JobStatus.RUNNING, pid=gone.pid)
        get_job(session=session, job_id=job.id).owner = f"{HOST}:{gone.pid}:stopped"
        run_id, job_id = run.id, job.id
    engine.dispose()
    folder = data_home.jobs / f"job_{job_id}"
    folder.mkdir(parents=True)
    epoch = {"type": "epoch", "record": {"epoch": 1, "train/total": 0.5, "val/total": 0.625}}
    (folder / "events.jsonl").write_text(json.dumps(epoch) + "\n")
    listed = json.loads(runner.invoke(app, ["runs", "list", "--json"]).output)
    assert [r["status"] for r in listed if r["run_id"] == run_id] == ["interrupted"]
    shown = json.loads(runner.invoke(app, ["runs", "show", str(run_id), "--json"]).output)
    assert shown["status"] == "interrupted"
    check = open_engine(data_home.database_url)
    with session_scope(check) as session:
        assert get_job(session=session, job_id=job_id).status == "interrupted"
        assert {(m.split, m.name) for m in list_metrics(session=session, run_id=run_id)} == {
            ("train", "total"),
            ("val", "total"),
        }, "the epoch the worker wrote is kept"
    check.dispose()
