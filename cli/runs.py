"""`trendlab runs ...`: the training runs in the database and the files they wrote."""

from __future__ import annotations

import json
from typing import Any

import typer

from cli.common import JsonOption, RunArgument, fail
from cli.remote import read
from services import facts as views

app = typer.Typer(help="List training runs.", no_args_is_help=True)


@app.command("list")
def runs_list(as_json: JsonOption = False) -> None:
    """List training runs, newest first (works while a server holds the database)."""
    facts = read(lambda _, engine: views.runs(engine=engine), "/runs")
    if as_json:
        typer.echo(json.dumps(facts, indent=2, default=str))
        return
    if not facts:
        typer.echo("No runs yet; try `trendlab train dual_tower --dataset demo`.")
    for item in facts:
        shown = headline(item["test"])
        typer.echo(
            f"{item['run_id']:5} {item['model']:20} {item['status']:10} {item['created']}  {shown}"
        )


def headline(test: dict[str, Any]) -> str:
    """A run's test figure in a few words. A market run's test metrics are nested per horizon
    (the shortest first: its correlation); a recommender's are flat (ndcg@10 when present)."""
    if not test:
        return ""
    name, value = next(iter(test.items()))
    if isinstance(value, dict):
        corr = value.get("pearson")
        return f"test corr {name} {corr:.3f}" if isinstance(corr, int | float) else ""
    name = "ndcg@10" if "ndcg@10" in test else name
    value = test[name]
    return f"test {name} {value:.3f}" if isinstance(value, int | float) else ""


@app.command("show")
def runs_show(run: RunArgument, as_json: JsonOption = False) -> None:
    """One run: status, configs, training summary (seed 002's training_summary.json), files."""
    facts = read(lambda _, engine: views.run(engine=engine, run_id=run), f"/runs/{run}")
    if facts is None:
        raise fail(f"No run {run}.")
    if as_json:
        typer.echo(json.dumps(facts, indent=2, default=str))
        return
    for key in ("run_id", "model", "status", "seed", "dataset_id", "created"):
        typer.echo(f"{key:11} {facts[key]}")
    typer.echo(f"summary     {json.dumps(facts['summary'], default=str)}")
    for artifact in facts["artifacts"]:
        typer.echo(
            f"artifact    {artifact['kind']:16} {artifact['bytes']:>10} B  {artifact['path']}"
        )
