"""`trendlab recsys ...`: the developers x startups recommender, from data to recommendations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import (
    DeviceOption,
    EpochsOption,
    JsonOption,
    PrecisionOption,
    ProgressPrinter,
    QuietOption,
    SeedOption,
    SummaryJsonOption,
    chosen_device,
    database,
    fail,
    note_precision,
    print_training_summary,
    training_overrides,
)
from core.config import ConfigError
from core.import_problems import ImportFailed
from core.market.importers import parse_mapping
from storage import DataHome, StorageError

if TYPE_CHECKING:
    from core.recsys.synthetic import RecsysData

app = typer.Typer(help="The developers x startups recommender.", no_args_is_help=True)


@app.command("synthetic")
def recsys_synthetic(
    name: Annotated[str, typer.Argument(help="Name to store the dataset under.")],
    users: Annotated[int, typer.Option(help="Number of users.")] = 350,
    items: Annotated[int, typer.Option(help="Number of startups.")] = 250,
    interactions: Annotated[int, typer.Option(help="Number of interactions.")] = 7500,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
) -> None:
    """Generate and store a synthetic developers x startups dataset (seed 004's scale)."""
    from core.recsys.synthetic import RecsysSpec, generate_recsys

    try:
        spec = RecsysSpec(users=users, items=items, interactions=interactions, seed=seed)
        data = generate_recsys(spec)
    except ValueError as err:
        raise fail(f"Cannot generate: {err}") from None
    _store_recsys(name, data, f"synthetic recommender, seed {seed}")


@app.command("import")
def recsys_import(
    name: Annotated[str, typer.Argument(help="Name to store the dataset under.")],
    interactions: Annotated[
        Path,
        typer.Option(
            help="CSV (or .csv.gz), Parquet or .inter: user_id, item_id, and optionally "
            "timestamp (without it, the random split only), interaction or rating (without "
            "either, every row is a purchase) and a weight (weight, quantity, count or plays)."
        ),
    ],
    users: Annotated[Path | None, typer.Option(help="Users file (user_id + fields).")] = None,
    items: Annotated[Path | None, typer.Option(help="Items file (item_id + fields).")] = None,
    column_map: Annotated[
        str,
        typer.Option(
            "--map",
            help="Column renames, ours=theirs: user_id=userID,item_id=artistID,weight=plays.",
        ),
    ] = "",
    events: Annotated[
        str, typer.Option(help="Values to seed types: watched=view,5=favorite,1=dislike.")
    ] = "",
    positive_threshold: Annotated[
        float | None,
        typer.Option(
            help="Ratings at or above it are positives (like), those below are left out "
            "(unless --events names them): the usual 'rating >= 4 is positive' protocol."
        ),
    ] = None,
    sep: Annotated[
        str | None,
        typer.Option(help="Field separator: ',', ';', '|' or 'tab' (default: from the header)."),
    ] = None,
) -> None:
    """Import users, items and interactions (any item domain): CSV, TSV, Parquet or RecBole
    atomic files (an .inter file brings the .user and .item beside it); problems name file,
    line, column."""
    from core.recsys.importers import MAPPABLE, import_recsys, parse_events
    from core.table_files import SEPARATORS, ReadOptions

    separator = {"tab": "\t", "\\t": "\t"}.get(sep or "", sep)
    if separator is not None and separator not in SEPARATORS:
        raise fail(f"--sep {sep!r} is not one of ',', ';', '|', 'tab'.")
    try:
        mapping = parse_mapping(column_map, allowed=MAPPABLE)
        data = import_recsys(
            interactions,
            users=users,
            items=items,
            mapping=mapping,
            events=parse_events(events),
            positive_threshold=positive_threshold,
            options=ReadOptions(sep=separator),
        )
    except ImportFailed as failure:
        raise fail(str(failure)) from None
    except ValueError as err:
        raise fail(str(err)) from None
    _store_recsys(name, data, f"import of {interactions.name}")
    recipe = data.recipe
    shown = {"\t": "tab", None: "-"}.get(recipe["separator"], recipe["separator"])
    times = (
        f"timestamps as {recipe['timestamp_format']}"
        if recipe.get("timestamps", True)
        else "no timestamp column, so every event at one instant and the random split only"
    )
    typer.echo(f"Read {', '.join(recipe['files'])}: separator {shown!r}, {times}.")
    if recipe["amount_column"]:
        typer.echo(f"Kept {recipe['amount_column']!r} as each event's weight.")
    typer.echo(f"Read {recipe['events_read_as']}.")
    for reason, count in recipe["left_out"].items():
        typer.echo(f"Left out {count:,} {reason}.")
    if recipe["merged_repeats"]:
        typer.echo(
            f"Merged {recipe['merged_repeats']:,} rows repeating a (user_id, item_id, timestamp) "
            "into the row before them (amounts summed, the strongest type kept)."
        )


def _store_recsys(name: str, data: RecsysData, description: str) -> None:
    """Save a recommender dataset in the data home and say what was stored."""
    from services.datasets import reused_sentence, store_recsys_dataset

    with database() as (_, engine):
        dataset, reused = store_recsys_dataset(
            engine=engine, name=name, data=data, description=description
        )
    if reused:
        typer.echo(reused_sentence(name, dataset.name))
        return
    typer.echo(
        f"Stored {dataset.name!r}: {len(data.users)} users, {len(data.items)} items, "
        f"{dataset.row_count} interactions."
    )


@app.command("train")
def recsys_train(
    dataset: Annotated[str, typer.Option(help="Stored recommender dataset name.")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Partial YAML of recommender settings: TwoTowerConfig and RecsysTrainingConfig "
            "fields in one file (see `trendlab config show RecsysTrainingConfig`).",
        ),
    ] = None,
    epochs: EpochsOption = None,
    seed: SeedOption = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="time (70/15/15 by one clock), user (each user's timeline) or random "
            "(each user's events 80/10/10, RecBole's protocol)."
        ),
    ] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = None,
    as_json: SummaryJsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Train the two-tower recommender; prints its test metrics beside the baselines. A
    progress bar and one line per epoch (with validation NDCG@10) go to stderr."""
    from core.config import parse_yaml
    from core.recsys.config import recsys_configs
    from services.recsys.runs import train_recsys_run

    resolved = chosen_device(device)
    try:
        settings = parse_yaml(config.read_text(), str(config)) if config else {}
        if not isinstance(settings, dict):
            raise ConfigError("file", str(config), "a YAML mapping of settings")
        overrides = training_overrides(epochs, seed, precision) | (
            {"split": split} if split else {}
        )
        two_tower, training = recsys_configs(
            {**settings, **overrides}, source=str(config or "the options")
        )
        note_precision(training.precision, resolved)
    except OSError as err:
        raise fail(f"Cannot read {config}: {err.strerror}.") from None
    except ConfigError as err:
        raise fail(str(err)) from None
    progress = ProgressPrinter(not quiet, label="recommender")

    def stage(line: str) -> None:
        if quiet:
            return
        progress.close()  # stages come before training and after it, never during
        typer.echo(line, err=True)

    with database() as (home, engine):
        try:
            run_id, summary = train_recsys_run(
                engine=engine,
                home=home,
                dataset_name=dataset,
                config=two_tower,
                training=training,
                callbacks=[progress],
                device=resolved,
                report=stage,
            )
        except (StorageError, ValueError, RuntimeError) as err:
            raise fail(f"Training failed: {err}") from None
        finally:
            progress.close()
    print_training_summary(run_id, summary, as_json=as_json)
    if as_json:
        return
    typer.echo("Label distribution of the training pairs:")
    for row in summary["label_distribution"]:
        typer.echo(f"  label={row['label']:.1f}: {row['rows']:>6} ({row['share']:.0%})")
    _print_recsys_metrics(home, run_id)


def _print_recsys_metrics(home: DataHome, run_id: int) -> None:
    from services.recsys.serving import metrics_table, verdict_lines
    from services.runs import run_directory

    report = json.loads((run_directory(home, run_id) / "test_metrics.json").read_text())
    for segment in ("all_users", "cold_users"):
        typer.echo(f"\n{segment.replace('_', ' ')} (test, k={report['k']}; low .. high: 95 %):")
        typer.echo(metrics_table(report, segment).to_string(float_format="%.3f"))
    typer.echo("")
    for line in verdict_lines(report):
        typer.echo(line)


@app.command("evaluate")
def recsys_evaluate(
    run: Annotated[int, typer.Argument(help="Recommender run id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """The run's test metrics with 95 % intervals: the model beside popularity, item-kNN,
    EASE, BPR and content, its paired verdict against each and the engine that serves."""
    from services.runs import run_directory

    # Opening the database first creates the data home and schema, as every command does.
    with database() as (home, _):
        path = run_directory(home, run) / "test_metrics.json"
    if not path.is_file():
        raise fail(
            f"Run {run} has no recommender test metrics ({home.relative(path)} is missing "
            "in the data home)."
        )
    if as_json:
        typer.echo(path.read_text())
    else:
        _print_recsys_metrics(home, run)


@app.command("recommend")
def recsys_recommend(
    user: Annotated[str, typer.Argument(help="User id, e.g. u0042.")],
    limit: Annotated[int, typer.Option(help="How many items (1-100).")] = 10,
    engine_name: Annotated[
        str,
        typer.Option(
            "--engine",
            help="auto (the run's routing) or one engine that serves (an unknown name is "
            "refused with the list).",
        ),
    ] = "auto",
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="field=value, e.g. type=collaboration.")
    ] = None,
    run: Annotated[int | None, typer.Option(help="Recommender run (default: active).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Top items for a user, with the engine that served them and why."""
    from core.recsys.serving import UnknownUser
    from services.recsys.serving import load_serving

    malformed = [f for f in filters or [] if "=" not in f or not f.split("=", 1)[1].strip()]
    if malformed:
        raise fail(f"--filter {malformed[0]!r} is not of the form field=value.")
    chosen = dict(f.split("=", 1) for f in filters or [])
    with database() as (home, engine):
        try:
            recommender = load_serving(engine=engine, home=home, run_id=run)
            answer = recommender.recommend(user, limit=limit, engine=engine_name, filters=chosen)
        except (ValueError, UnknownUser) as err:
            raise fail(str(err)) from None
    if as_json:
        items = answer.items[["rank", "item_id", "score", "why"]].to_dict("records")
        typer.echo(
            json.dumps(
                {"user_id": user, "engine": answer.engine, "reason": answer.reason, "items": items},
                indent=2,
            )
        )
        return
    typer.echo(f"{answer.engine}: {answer.reason}")
    shown = answer.items[["rank", "item_id", "name", "type", "score", "why"]]
    typer.echo(shown.to_string(index=False))
