"""Forecasts: what a trained model says as of a date, per ticker and horizon, with a band
from its own test-set errors; and, once the forward windows have passed, how those
forecasts fared against what happened.

A forecast is made as of the last date that has features (the newest rows have no labels
yet: their forward window is still open), never the last labelled date, and reads only
rows up to that date, so it is the same whether or not later rows are stored. Its target
date is the as-of date plus the horizon in calendar days (the labels' definition).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.market.metrics import (
    daily_information_coefficients,
    hit_rate,
    information_coefficients,
)
from core.market.predict import PredictionInputError, Predictor
from core.market.strategy import market_neutral_weights

BAND = (0.1, 0.9)
"""The band around a score: these quantiles of the test rows' errors (target - score)."""
COLUMNS = [
    "as_of",
    "ticker",
    "horizon",
    "target_date",
    "score",
    "predicted_class",
    "probabilities",
    "band_low",
    "band_high",
]


class ForecastError(ValueError):
    """No forecast can be made (no rows up to the date asked for, a model without test
    errors); the message says which."""


def error_bands(test_predictions: pd.DataFrame, predictor: Predictor) -> dict[int, tuple]:
    """Per horizon, the BAND quantiles of target - score over the run's test rows (the
    evaluation's per-row predictions, ``core.market.evaluation.Evaluation.predictions``)."""
    bands = {}
    for h in predictor.horizons:
        target, _ = predictor.spec.target.columns(h)
        errors = (test_predictions[target] - test_predictions[f"score_{h}d"]).dropna()
        if errors.empty:
            raise ForecastError(f"the run has no test rows with a {h}-day outcome for a band")
        low, high = np.quantile(errors.to_numpy(float), BAND)
        bands[h] = (float(low), float(high))
    return bands


def forecast_rows(frame: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """The rows a forecast as of ``as_of`` (default: the newest date) may read: every row up
    to that date of the tickers that have a row on it."""
    past, _ = rows_and_omitted(frame, as_of)
    return past


def rows_and_omitted(
    frame: pd.DataFrame, as_of: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """``forecast_rows`` and the tickers it leaves out, each with the reason (no row on the
    as-of date: halted, delisted or on another calendar)."""
    dates = pd.to_datetime(frame["date"])
    as_of = dates.max() if as_of is None else pd.Timestamp(as_of)
    past = frame[dates <= as_of]
    if past.empty:
        raise ForecastError(f"no rows on or before {as_of.date()}")
    past_dates = pd.to_datetime(past["date"])
    as_of = past_dates.max()
    present = past.loc[past_dates == as_of, "ticker"].unique()
    last = past_dates.groupby(past["ticker"].to_numpy()).max()
    omitted = {
        str(ticker): f"no row on {as_of.date()} (its last is {when.date()})"
        for ticker, when in last.items()
        if ticker not in set(present)
    }
    return past[past["ticker"].isin(present)].reset_index(drop=True), omitted


def predict_available(predictor: Predictor, rows: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """``predictor.predict_frame`` of the rows, and the tickers it could not score with the
    reason: a sequence model scores ticker by ticker when one of them has too few steps
    for its window, so one short history does not stop the others."""
    try:
        return predictor.predict_frame(rows), {}
    except PredictionInputError:
        if not predictor.spec.sequence:
            raise
    tables, omitted = [], {}
    for ticker, group in rows.groupby("ticker", sort=True):
        try:
            tables.append(predictor.predict_frame(group.reset_index(drop=True)))
        except PredictionInputError as error:
            omitted[str(ticker)] = str(error)
    if not tables:
        raise ForecastError("no ticker has enough history: " + "; ".join(omitted.values()))
    return pd.concat(tables, ignore_index=True), omitted


def make_forecast(
    predictor: Predictor,
    frame: pd.DataFrame,
    bands: dict[int, tuple],
    *,
    as_of: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per (ticker, horizon) as of the last feature date up to ``as_of``: the
    score, the predicted class and its probabilities, the target date and the band; and
    the tickers left out, with the reason."""
    rows, omitted = rows_and_omitted(frame, as_of)
    when = pd.to_datetime(rows["date"]).max()
    if not predictor.spec.sequence:
        rows = rows[pd.to_datetime(rows["date"]) == when]
    table, unscored = predict_available(predictor, rows.reset_index(drop=True))
    omitted = {**omitted, **unscored}
    names = predictor.spec.target.class_names
    parts = []
    for h in predictor.horizons:
        low, high = bands[h]
        score = table[f"score_{h}d"].to_numpy(float)
        probabilities = [
            {name: round(float(p), 6) for name, p in zip(names, values, strict=True)}
            for values in table[[f"p_{name}_{h}d" for name in names]].to_numpy(float)
        ]
        parts.append(
            pd.DataFrame(
                {
                    "as_of": when,
                    "ticker": table["ticker"].astype(str).to_numpy(),
                    "horizon": h,
                    "target_date": when + pd.Timedelta(days=h),
                    "score": score,
                    "predicted_class": table[f"class_{h}d"].astype(str).to_numpy(),
                    "probabilities": probabilities,
                    "band_low": score + low,
                    "band_high": score + high,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[COLUMNS], omitted


def realised(forecasts: pd.DataFrame, frame: pd.DataFrame, predictor: Predictor) -> pd.DataFrame:
    """The forecasts joined to what happened: the target and the forward return of each
    (as-of date, ticker, horizon), where the dataset now has them (NaN where the window is
    still open or the ticker has no row)."""
    keyed = frame.assign(date=pd.to_datetime(frame["date"]))
    parts = []
    for h, group in forecasts.groupby("horizon", sort=True):
        target, _ = predictor.spec.target.columns(int(h))
        outcome = keyed[["date", "ticker", target, f"fwd_return_{h}d"]].rename(
            columns={"date": "as_of", target: "outcome", f"fwd_return_{h}d": "forward_return"}
        )
        group = group.assign(as_of=pd.to_datetime(group["as_of"]))
        parts.append(group.merge(outcome, on=["as_of", "ticker"], how="left"))
    return pd.concat(parts, ignore_index=True)


def live_figures(joined: pd.DataFrame) -> dict[int, dict[str, float]]:
    """Per horizon, over the forecasts whose outcome has arrived: how many, the mean daily IC
    and rank IC of score against the forward return (``core.market.metrics``, the
    backtest's own definitions), the hit rate, the mean long/short forward return per
    as-of date (``long_short``), and the share inside their band."""
    figures = {}
    for h, group in joined.groupby("horizon", sort=True):
        done = group.dropna(subset=["forward_return"])
        ic = information_coefficients(
            done.rename(columns={"as_of": "date"})[["date", "score", "forward_return"]]
        )
        has_outcome = done.dropna(subset=["outcome"])
        inside = (has_outcome["outcome"] >= has_outcome["band_low"]) & (
            has_outcome["outcome"] <= has_outcome["band_high"]
        )
        portfolio = long_short(done) if len(done) else pd.Series(dtype=float)
        figures[int(h)] = {
            "forecasts": len(group),
            "long_short": float(portfolio.mean()) if len(portfolio) else np.nan,
            "joined": len(done),
            "as_of_dates": int(done["as_of"].nunique()),
            "ic": ic["ic"],
            "rank_ic": ic["rank_ic"],
            "hit_rate": hit_rate(done["score"], done["forward_return"]) if len(done) else np.nan,
            "inside_band": float(inside.mean()) if len(has_outcome) else np.nan,
        }
    return figures


def long_short(done: pd.DataFrame) -> pd.Series:
    """Per as-of date, the forward return of the market-neutral portfolio the forecasts
    set (``core.market.strategy.market_neutral_weights``: demeaned ranks, gross 1, net 0),
    held over the horizon; 0 on a date whose scores do not differ."""
    scores = done.pivot(index="as_of", columns="ticker", values="score").sort_index()
    returns = done.pivot(index="as_of", columns="ticker", values="forward_return")
    weights = market_neutral_weights(scores)
    return (weights * returns.reindex_like(scores).fillna(0.0)).sum(axis=1)


def daily_live(joined: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Per as-of date at one horizon: the live IC and rank IC (dates with an outcome and a
    spread across tickers) and the long/short forward return, for the live chart."""
    done = joined[(joined["horizon"] == horizon)].dropna(subset=["forward_return"])
    frame = done.rename(columns={"as_of": "date"})[["date", "score", "forward_return"]]
    daily = daily_information_coefficients(frame).rename(columns={"date": "as_of"})
    if done.empty:
        return daily.assign(long_short=pd.Series(dtype=float))
    returns = long_short(done).rename("long_short").rename_axis("as_of").reset_index()
    return daily.merge(returns, on="as_of", how="right").sort_values("as_of").reset_index(drop=True)
