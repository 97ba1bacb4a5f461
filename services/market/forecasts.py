"""Forecasts of finished market runs: made and stored (`trendlab forecast`, the Predict
page), read back (`GET /api/forecasts/latest`), and followed once newer data holds their
outcomes, beside the run's backtest (the Evaluate page).

A run forecasts on the newest version of its dataset (the name it trained on; a version an
update replaced is kept as ``NAME@vK``, see ``services.market.updates``), or on a dataset
named by the user. Making a forecast writes, so it is refused in a read-only deployment;
reading and following them is not.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.drift import feature_drift
from core.market.forecast import (
    BAND,
    daily_live,
    error_bands,
    live_figures,
    make_forecast,
    realised,
)
from core.market.training import training_rows, windowed
from core.market.uncertainty import ic_statistics
from services.access import ensure_writable
from services.market.evaluation import load_evaluation, run_predictor
from services.runs import UnknownRun, run_and_dataset
from storage.db import StorageError
from storage.feature_store import load_dataset_frame
from storage.forecasts import latest_as_of, list_forecasts, replace_forecasts
from storage.repository import VERSION, get_dataset, get_run, session_scope

MIN_LIVE_DATES = 20
"""A live figure is judged against the backtest only once it rests on this many as-of
dates with an outcome; before that it is shown with "too few forecasts to judge"."""


def current_dataset_name(name: str) -> str:
    """The name under which the newest version of a dataset lives (``demo@v1`` -> ``demo``)."""
    return VERSION.sub("", name)


def run_dataset_name(engine: Engine, run_id: int) -> str:
    """The name of the newest version of the dataset the run trained on."""
    with session_scope(engine) as session:
        if get_run(session=session, run_id=run_id) is None:
            raise UnknownRun(f"No run {run_id}.")
        _, dataset = run_and_dataset(session=session, run_id=run_id)
        return current_dataset_name(dataset.name)


RECENT_DATES = 63
"""Drift before any newer data has arrived: the run's own last quarter of dates."""


def drift_report(engine: Engine, run_id: int, predictor: Any, newest: pd.DataFrame) -> dict:
    """The feature drift (``core.market.drift``) of the rows that arrived after the run's
    own dataset version (or, before any did, its last RECENT_DATES dates) against the
    run's training rows (the labelled rows up to its training segment's end)."""
    with session_scope(engine) as session:
        _, own = run_and_dataset(session=session, run_id=run_id)
        everything = load_dataset_frame(session=session, name=own.name)
    data = DataConfig.from_dict(predictor.meta.get("data_config", {}), partial=True)
    frame = windowed(everything, data)  # a rolling retrain trained on its window only
    dates = pd.to_datetime(frame["date"])
    targets = [predictor.spec.target.columns(h)[0] for h in predictor.horizons]
    train = training_rows(frame, data, targets)
    arrived = newest[pd.to_datetime(newest["date"]) > dates.max()]
    if len(arrived):
        live, basis = arrived, f"the rows after {dates.max().date()} (newer data)"
    else:
        recent = np.sort(dates.unique())[-RECENT_DATES:]
        live = frame[dates.isin(recent)]
        basis = f"the run's last {len(recent)} dates (no newer data yet)"
    groups = {
        name: {k: _number(v) if isinstance(v, float) else v for k, v in figures.items()}
        for name, figures in feature_drift(train, live).items()
    }
    return {"basis": basis, "train_rows": len(train), "live_rows": len(live), "groups": groups}


def _rows(forecasts: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "as_of": f.as_of.isoformat(),
            "ticker": f.ticker,
            "horizon": f.horizon,
            "target_date": f.target_date.isoformat(),
            "score": f.score,
            "predicted_class": f.predicted_class,
            "probabilities": f.probabilities,
            "band_low": f.band_low,
            "band_high": f.band_high,
        }
        for f in forecasts
    ]


def forecast_run(
    *,
    engine: Engine,
    run_id: int,
    dataset: str | None = None,
    as_of: dt.date | None = None,
) -> dict[str, Any]:
    """The run's forecast for every ticker and horizon as of the last feature date of the
    dataset (or of ``as_of``, the last one on or before it), stored in place of any it made
    as of that date before. The band is the run's test errors' BAND quantiles."""
    ensure_writable(f"forecasting with run {run_id}")
    name = dataset or run_dataset_name(engine, run_id)
    predictor = run_predictor(engine=engine, run_id=run_id)
    bands = error_bands(load_evaluation(engine=engine, run_id=run_id).predictions, predictor)
    with session_scope(engine) as session:
        stored = get_dataset(session=session, name=name)
        if stored is None:
            raise StorageError(f"No dataset named {name!r}.")
        frame = load_dataset_frame(session=session, name=name)
        dataset_id, dataset_hash = stored.id, stored.content_hash
    table, omitted = make_forecast(
        predictor, frame, bands, as_of=None if as_of is None else pd.Timestamp(as_of)
    )
    when = pd.Timestamp(table["as_of"].iloc[0]).date()
    rows = [
        {
            **row,
            "target_date": pd.Timestamp(row["target_date"]).date(),
            "score": float(row["score"]),
            "band_low": float(row["band_low"]),
            "band_high": float(row["band_high"]),
            "horizon": int(row["horizon"]),
        }
        for row in table.drop(columns="as_of").to_dict("records")
    ]
    with session_scope(engine) as session:
        replace_forecasts(
            session=session,
            run_id=run_id,
            dataset_id=dataset_id,
            dataset_hash=dataset_hash,
            as_of=when,
            rows=rows,
        )
    made = latest_forecasts(engine=engine, run_id=run_id, dataset=name, as_of=when)
    return {**made, "omitted": omitted}


def latest_forecasts(
    *,
    engine: Engine,
    run_id: int,
    dataset: str | None = None,
    as_of: dt.date | None = None,
) -> dict[str, Any]:
    """The run's stored forecasts as of its newest as-of date (or ``as_of``); an empty list
    when it has made none."""
    with session_scope(engine) as session:
        if get_run(session=session, run_id=run_id) is None:
            raise UnknownRun(f"No run {run_id}.")
        when = as_of or latest_as_of(session=session, run_id=run_id)
        forecasts = (
            [] if when is None else list_forecasts(session=session, run_id=run_id, as_of=when)
        )
        rows = _rows(forecasts)
        dataset_id = forecasts[0].dataset_id if forecasts else None
    return {
        "run_id": run_id,
        "as_of": None if when is None else when.isoformat(),
        "dataset": dataset,
        "dataset_id": dataset_id,
        "band": {"low_quantile": BAND[0], "high_quantile": BAND[1]},
        "forecasts": rows,
    }


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def follow_run(*, engine: Engine, run_id: int, dataset: str | None = None) -> dict[str, Any]:
    """Every stored forecast of the run joined to its outcome where the newest version of
    the dataset holds it, the live figures per horizon (``core.market.forecast.live_figures``)
    beside the backtest's rank IC and its interval (the run's stored evaluation), and a
    sentence per horizon saying whether the live figure has left that interval.

    Only forecasts as of the last date of the run's own dataset version or later are live:
    one made with ``--as-of`` inside its test years repeats the backtest (``backtest``), one
    before them is in-sample (``in_sample``); both are listed, never counted."""
    name = dataset or run_dataset_name(engine, run_id)
    predictor = run_predictor(engine=engine, run_id=run_id)
    evaluation = load_evaluation(engine=engine, run_id=run_id)
    report = evaluation.report
    unseen_from = pd.to_datetime(evaluation.predictions["date"]).min()
    live_from = _own_last_date(engine, run_id)
    with session_scope(engine) as session:
        stored = _rows(list_forecasts(session=session, run_id=run_id))
        frame = load_dataset_frame(session=session, name=name) if stored else None
    if not stored:
        return {"run_id": run_id, "dataset": name, "joined": [], "horizons": {}}
    forecasts = pd.DataFrame(stored).assign(as_of=lambda f: pd.to_datetime(f["as_of"]))
    joined = realised(forecasts, frame, predictor)
    joined["period"] = np.select(
        [joined["as_of"] < unseen_from, joined["as_of"] < live_from],
        ["in_sample", "backtest"],
        "live",
    )
    counted = joined[joined["period"] == "live"]
    live = live_figures(counted)
    horizons = {}
    for h, figures in live.items():
        own = interval_of(counted, h)
        section = report.get("uncertainty", {}).get("horizons", {}).get(f"{h}d", {})
        low, high = section.get("intervals", {}).get("model", {}).get("rank_ic", [np.nan] * 2)
        backtest = report.get("reports", {}).get("model", {}).get(f"{h}d", {})
        point = backtest.get("finance", {}).get("rank_ic", np.nan)
        horizons[f"{h}d"] = {
            **{k: _number(v) if isinstance(v, float) else v for k, v in figures.items()},
            "backtest_rank_ic": _number(point),
            "backtest_low": _number(low),
            "backtest_high": _number(high),
            "live_low": _number(own["live_low"]),
            "live_high": _number(own["live_high"]),
            **judged({**figures, **own}, low, high, h),
            "daily": [
                {
                    "as_of": row.as_of.date().isoformat(),
                    "ic": _number(row.ic),
                    "rank_ic": _number(row.rank_ic),
                    "long_short": _number(row.long_short),
                }
                for row in daily_live(counted, h).itertuples()
            ],
        }
    daily = joined.dropna(subset=["forward_return"])
    return {
        "run_id": run_id,
        "dataset": name,
        "horizons": horizons,
        "drift": drift_report(engine, run_id, predictor, frame),
        "joined": [
            {
                **row,
                "as_of": pd.Timestamp(row["as_of"]).date().isoformat(),
                "outcome": _number(row["outcome"]),
                "forward_return": _number(row["forward_return"]),
            }
            for row in joined.drop(columns="probabilities").to_dict("records")
        ],
        "outcomes": len(daily),
        "in_sample": int((joined["period"] == "in_sample").sum()),
        "backtest": int((joined["period"] == "backtest").sum()),
        "counted_from": str(live_from.date()),
    }


def _own_last_date(engine: Engine, run_id: int) -> pd.Timestamp:
    with session_scope(engine) as session:
        _, own = run_and_dataset(session=session, run_id=run_id)
        return pd.Timestamp(own.end_date)


def interval_of(counted: pd.DataFrame, horizon: int) -> dict[str, float]:
    live_low, live_high = live_interval(daily_live(counted, horizon), horizon)
    return {"live_low": live_low, "live_high": live_high}


def live_interval(daily: pd.DataFrame, horizon: int) -> tuple[float, float]:
    """The 95 % interval of the live mean rank IC: Newey-West over the as-of dates with a
    bandwidth of one horizon's worth of them (forecasts whose windows overlap are not
    independent; ``core.market.uncertainty.ic_statistics``)."""
    values = daily["rank_ic"].dropna()
    if len(values) < 3:
        return (math.nan, math.nan)
    span = (daily["as_of"].max() - daily["as_of"].min()).days or 1
    per_horizon = max(1, round(horizon * (len(values) - 1) / span))
    stats = ic_statistics(values.to_numpy(float), per_horizon)
    if not math.isfinite(stats["ic_t_nw"]) or stats["ic_t_nw"] == 0:
        return (math.nan, math.nan)
    error = abs(stats["ic_mean"] / stats["ic_t_nw"])
    return (stats["ic_mean"] - 1.96 * error, stats["ic_mean"] + 1.96 * error)


def judged(figures: dict[str, Any], low: float, high: float, horizon: int) -> dict[str, Any]:
    """'inside', 'left' or 'too few' for the live rank IC against the backtest's interval,
    with its sentence (how many as-of dates and forecasts it rests on). "Left" needs the
    live mean's own interval (``live_low`` .. ``live_high``) to clear the backtest's: a
    mean over a few dozen overlapping forecasts is far noisier than the backtest's."""
    dates, joined, value = figures["as_of_dates"], figures["joined"], figures["rank_ic"]
    rests = f"{dates} as-of dates, {joined} forecasts with an outcome"
    days = f"{horizon}-day"
    live_low, live_high = figures.get("live_low", math.nan), figures.get("live_high", math.nan)
    if dates < MIN_LIVE_DATES or not math.isfinite(value):
        return {
            "status": "too few",
            "sentence": f"too few forecasts to judge the {days} rank IC yet ({rests}; "
            f"judged from {MIN_LIVE_DATES} as-of dates)",
        }
    if not (math.isfinite(low) and math.isfinite(high)):
        return {"status": "too few", "sentence": f"the backtest has no {days} rank IC interval"}
    own = f"live interval {live_low:+.3f}..{live_high:+.3f}"
    if not (math.isfinite(live_low) and math.isfinite(live_high)) or (
        live_high >= low and live_low <= high
    ):
        return {
            "status": "inside",
            "sentence": f"the live {days} rank IC {value:+.3f} ({own}) is consistent with the "
            f"backtest's interval {low:+.3f}..{high:+.3f} ({rests})",
        }
    side = "below" if live_high < low else "above"
    return {
        "status": "left",
        "sentence": f"the live {days} rank IC {value:+.3f} ({own}) has left the backtest's "
        f"interval {low:+.3f}..{high:+.3f}, {side} it ({rests}): the model may have stopped "
        "working as it did in the test years",
    }
