"""`trendlab runs ...`: the training runs in the database and the files they wrote."""

from __future__ import annotations

import json

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
        first = next(iter(item["test"].items()), None)  # the shortest horizon
        corr = first[1].get("pearson") if first else None
        shown = f"test corr {first[0]} {corr:.3f}" if corr is not None else ""
        typer.echo(
            f"{item['run_id']:5} {item['model']:20} {item['status']:10} {item['created']}  {shown}"
        )


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
