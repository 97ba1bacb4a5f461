"""`trendlab runs list` over both kinds of run (issue 23, item 10), and the runs a stopped
server's jobs left 'running' (issue 41, item 11)."""

from __future__ import annotations

import json
import subprocess

from sqlalchemy import Engine
from typer.testing import CliRunner

from cli import app
from services.jobs.run_owners import HOST
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
    assert "0.125 pearson 7d" in lines[market]
    assert "0.188 ndcg@10" in lines[recommender]
    listed = json.loads(runner.invoke(app, ["runs", "list", "--json"]).output)
    assert [r["run_id"] for r in listed] == [recommender, market]


def test_runs_are_named_tagged_and_filtered_from_the_cli(engine: Engine) -> None:
    """Issue 39: runs can be named and tagged from the CLI, and the list filters on them."""
    first = _finished(
        engine, "dual_tower", {"7d": {"rank_ic": 0.031, "rank_ic_low": 0.012, "rank_ic_high": 0.05}}
    )
    second = _finished(engine, "dual_tower", {"7d": {"pearson": 0.2}})
    engine.dispose()
    named = runner.invoke(app, ["runs", "name", str(first), "wide batch"])
    assert named.exit_code == 0 and f"Run {first} is named 'wide batch'." in named.output
    tagged = runner.invoke(app, ["runs", "tag", str(first), "sample", "lr-2x"])
    assert tagged.exit_code == 0 and "tags: lr-2x, sample." in tagged.output
    runner.invoke(app, ["runs", "tag", str(second), "sample"])
    removed = runner.invoke(app, ["runs", "tag", str(second), "sample", "--remove"])
    assert "tags: none." in removed.output
    listed = runner.invoke(app, ["runs", "list", "--tag", "sample"])
    lines = listed.output.splitlines()
    assert len(lines) == 1 and "'wide batch'" in lines[0] and "[lr-2x, sample]" in lines[0]
    assert "0.031 (0.012..0.050) rank_ic 7d" in lines[0]
    assert runner.invoke(app, ["runs", "list", "--match", "wide"]).output.count("\n") == 1
    bad = runner.invoke(app, ["runs", "tag", str(first), "no spaces allowed"])
    assert bad.exit_code == 1 and "tag 'no spaces allowed'" in bad.output
    missing = runner.invoke(app, ["runs", "name", "999", "x"])
    assert missing.exit_code == 1 and "No run 999." in missing.output
    cleared = runner.invoke(app, ["runs", "name", str(first), ""])
    assert f"Run {first} has no name." in cleared.output


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
