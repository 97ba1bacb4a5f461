"""What a trained market model says now, and whether it is still working: `trendlab
forecast RUN` makes and stores its forecast as of the dataset's last feature date;
`trendlab follow RUN` joins the stored forecasts to the outcomes newer data brought;
`trendlab retrain RUN` trains its configs again on the latest years and promotes the new run
only when the verdict says it beats the serving one.

torch and the model code are imported inside the commands, so `trendlab --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from cli.common import JsonOption, ProgressPrinter, QuietOption, RunArgument, database, fail

DatasetOption = Annotated[
    str | None,
    typer.Option(help="Dataset to read (default: the newest version of the run's own)."),
]


def forecast(
    run: RunArgument,
    dataset: DatasetOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Forecast as of this date (YYYY-MM-DD; the last feature date on or before "
            "it). Default: the dataset's last feature date.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Forecast every ticker at every horizon with a run's model, with a band from its test
    errors; the forecast is stored so `trendlab follow` can join its outcomes later."""
    from core.checkpoints import CheckpointError
    from core.market.forecast import ForecastError
    from core.market.predict import PredictionInputError
    from services.market.forecasts import forecast_run

    try:
        when = None if as_of is None else dt.date.fromisoformat(as_of)
    except ValueError:
        raise fail(f"--as-of {as_of!r} is not a date (YYYY-MM-DD).") from None
    with database() as (_, engine):
        try:
            result = forecast_run(engine=engine, run_id=run, dataset=dataset, as_of=when)
        except (CheckpointError, ForecastError, PredictionInputError) as err:
            raise fail(f"Run {run}: {err}") from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    rows = result["forecasts"]
    typer.echo(
        f"Run {run} as of {result['as_of']} on {result['dataset']}: {len(rows)} forecasts "
        f"(band: the run's test errors, {result['band']['low_quantile']:.0%}-"
        f"{result['band']['high_quantile']:.0%})."
    )
    for ticker, reason in result["omitted"].items():
        typer.secho(f"left out: {ticker}: {reason}", err=True, fg=typer.colors.YELLOW)
    for row in rows:
        typer.echo(
            f"  {row['ticker']:8} {row['horizon']:>3}d -> {row['target_date']}  "
            f"score {row['score']:+.3f} [{row['band_low']:+.3f}, {row['band_high']:+.3f}]  "
            f"{row['predicted_class']}"
        )


def follow(run: RunArgument, dataset: DatasetOption = None, as_json: JsonOption = False) -> None:
    """A run's stored forecasts against what happened: the live rank IC, hit rate and band
    coverage per horizon beside the backtest's, and whether the live figure has left it."""
    from core.checkpoints import CheckpointError
    from services.market.forecasts import follow_run

    with database() as (_, engine):
        try:
            result = follow_run(engine=engine, run_id=run, dataset=dataset)
        except CheckpointError as err:
            raise fail(f"Run {run}: {err}") from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    if not result.get("joined"):
        typer.echo(f"Run {run} has no stored forecasts yet (`trendlab forecast {run}`).")
        return
    typer.echo(
        f"Run {run} on {result['dataset']}: {result['outcomes']} forecasts with an outcome; "
        f"live from {result['counted_from']} (the end of the run's data); "
        f"{result['backtest']} made as of its test years and {result['in_sample']} as of "
        "earlier ones are listed, not counted."
    )
    for horizon, section in result["horizons"].items():
        typer.echo(f"  {horizon}: {section['sentence']}")
        figures = {
            "hit rate": section["hit_rate"],
            "long/short per as-of date": section["long_short"],
            "inside the band": section["inside_band"],
        }
        shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items() if v is not None)
        if shown:
            typer.echo(f"       {shown}")
    drift = result["drift"]
    typer.echo(f"Feature drift (PSI) of {drift['basis']} against the training rows:")
    for group, figures in drift["groups"].items():
        if figures["psi"] is None:
            typer.echo(f"  {group:7} unknown (no known values on one side)")
            continue
        typer.echo(
            f"  {group:7} {figures['psi']:.3f} {figures['level']}; most moved "
            f"{figures['most_moved']} ({figures['most_moved_psi']:.3f})"
        )


def retrain(
    run: RunArgument,
    window_years: Annotated[
        float, typer.Option(help="Train on the dataset's latest this many years.")
    ] = 3.0,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Retrain a serving market run's configs on the newest data (a rolling window), judge
    the new run against it on rows neither has seen, and promote it only on "beats"."""
    from core.checkpoints import CheckpointError
    from services.market.rolling import retrain_here

    progress = ProgressPrinter(not quiet, label="retrain")
    with database() as (home, engine):
        try:
            decision = retrain_here(
                engine=engine,
                home=home,
                serving_run_id=run,
                window_years=window_years,
                callbacks=[progress],
            )
        except (CheckpointError, ValueError) as err:
            raise fail(f"Run {run}: {err}") from None
        finally:
            progress.close()
    if as_json:
        typer.echo(json.dumps(decision, indent=2))
        return
    typer.echo(f"Run {decision['candidate']} trained; {decision['reason']}.")
