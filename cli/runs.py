"""`trendlab runs ...`: the training runs in the database and the files they wrote."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cli.common import JsonOption, RunArgument, fail
from cli.remote import read, through
from services import catalog
from services.runs_table import label

app = typer.Typer(help="List, name and tag training runs.", no_args_is_help=True)


@app.command("list")
def runs_list(
    as_json: JsonOption = False,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only runs with this tag (repeatable).")
    ] = None,
    match: Annotated[
        str, typer.Option(help="Only runs whose name, model, dataset, target or status has it.")
    ] = "",
) -> None:
    """List training runs, newest first: name, model, dataset, target, status, the primary
    test metric with its interval, the verdict and tags (works while a server holds the
    database)."""
    facts = read(lambda _, engine: [r.facts() for r in catalog.runs(engine=engine)], "/runs")
    wanted = set(tag or [])
    facts = [
        item
        for item in facts
        if wanted <= set(item.get("tags", []))
        and match.lower()
        in " ".join(
            str(item.get(k, "")) for k in ("name", "model", "dataset", "target", "status")
        ).lower()
    ]
    if as_json:
        typer.echo(json.dumps(facts, indent=2, default=str))
        return
    if not facts:
        typer.echo(
            "No runs match."
            if wanted or match
            else "No runs yet; try `trendlab train dual_tower --dataset demo`."
        )
    for item in facts:
        shown = item.get("primary") or headline(item["test"])
        name = f" {item['name']!r}" if item.get("name") else ""
        tags = f"  [{', '.join(item['tags'])}]" if item.get("tags") else ""
        typer.echo(
            f"{item['run_id']:5}{name} {item['model']:20} {item['status']:10} {item['created']}  "
            f"{shown}{'  ' + item['verdict'] if item.get('verdict') else ''}{tags}"
        )


@app.command("name")
def runs_name(
    run: RunArgument,
    name: Annotated[str, typer.Argument(help="The run's name ('' clears it).")],
) -> None:
    """Name a run (through the server when one holds the database)."""
    found = through(
        lambda _, engine: label(engine=engine, run_id=run, name=name),
        "PATCH",
        f"/runs/{run}",
        {"name": name},
    )
    typer.echo(
        f"Run {run} is named {found['name']!r}." if found["name"] else f"Run {run} has no name."
    )


@app.command("tag")
def runs_tag(
    run: RunArgument,
    tags: Annotated[list[str], typer.Argument(help="Tags to add (or remove with --remove).")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove the tags instead.")] = False,
) -> None:
    """Tag a run, or remove tags (through the server when one holds the database)."""
    change = {"remove": tags} if remove else {"add": tags}
    found = through(
        lambda _, engine: label(engine=engine, run_id=run, **change),
        "PATCH",
        f"/runs/{run}",
        change,
    )
    typer.echo(f"Run {run} tags: {', '.join(found['tags']) or 'none'}.")


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
    facts = read(lambda _, engine: catalog.run_details(engine=engine, run_id=run), f"/runs/{run}")
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
