"""`trendlab runs ...`: the training runs in the database and the files they wrote."""

from __future__ import annotations

import json

import typer

from cli.common import JsonOption, RunArgument, database, fail
from services import catalog

app = typer.Typer(help="List training runs.", no_args_is_help=True)


@app.command("list")
def runs_list(as_json: JsonOption = False) -> None:
    """List training runs, newest first."""
    with database() as (_, engine):
        found = catalog.runs(engine=engine)
    facts = [
        {
            "run_id": r.id,
            "model": r.model,
            "status": r.status,
            "seed": r.seed,
            "created": r.created_at.isoformat(timespec="seconds"),
            "test": r.summary.get("test", {}),
        }
        for r in found
    ]
    if as_json:
        typer.echo(json.dumps(facts, indent=2, default=str))
        return
    if not facts:
        typer.echo("No runs yet; try `trendlab train dual_tower --dataset demo`.")
    for item in facts:
        corr = item["test"].get("7d", {}).get("pearson")
        shown = f"test corr 7d {corr:.3f}" if corr is not None else ""
        typer.echo(
            f"{item['run_id']:5} {item['model']:20} {item['status']:10} {item['created']}  {shown}"
        )


@app.command("show")
def runs_show(run: RunArgument, as_json: JsonOption = False) -> None:
    """One run: status, configs, training summary (seed 002's training_summary.json), files."""
    with database() as (_, engine):
        found = catalog.run(engine=engine, run_id=run)
        if found is None:
            raise fail(f"No run {run}.")
        artifacts = catalog.artifacts(engine=engine, run_id=run)
    facts = {
        "run_id": found.id,
        "model": found.model,
        "status": found.status,
        "seed": found.seed,
        "dataset_id": found.dataset_id,
        "created": found.created_at.isoformat(timespec="seconds"),
        "summary": found.summary,
        "config": found.config,
        "artifacts": [
            {"kind": a.kind, "path": str(a.path), "bytes": a.bytes, "sha256": a.sha256}
            for a in artifacts
        ],
    }
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
