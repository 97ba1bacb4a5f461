"""The parts of Predict and Evaluate that follow a run after its backtest: the latest stored
forecast (and the button that makes one), and the live figures against the backtest, the
feature drift and the rolling-retrain decisions (``services.market.forecasts``,
``services.market.rolling``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.checkpoints import CheckpointError
from core.market.forecast import ForecastError
from core.market.predict import PredictionInputError
from pages import charts
from pages.access import refused
from pages.shared import engine, said
from services.catalog import StorageError
from services.market.forecasts import follow_run, forecast_run, latest_forecasts, run_dataset_name
from services.market.rolling import promotion_table


@st.cache_data(ttl=30, max_entries=16, show_spinner="Joining the forecasts to their outcomes...")
def followed(database_url: str, run_id: int, as_of: str | None) -> dict:
    return follow_run(engine=engine(), run_id=run_id)


def forecast_tab(run_id: int) -> None:
    """The run's newest stored forecast, its chart, and "Forecast now"."""
    latest = latest_forecasts(engine=engine(), run_id=run_id)
    writable = not refused("making forecasts")
    as_of = None
    if writable:
        as_of = st.date_input(
            "As of (empty: the dataset's last feature date)",
            value=None,
            key=f"as-of-{run_id}",
            help="An earlier date forecasts from the rows up to it only; before the run's "
            "test segment such a forecast is in-sample and is never counted as live.",
        )
    if writable and st.button("Forecast now", key=f"forecast-{run_id}"):
        try:
            latest = forecast_run(engine=engine(), run_id=run_id, as_of=as_of)
        except (StorageError, CheckpointError, ForecastError, PredictionInputError) as error:
            st.error(said(error))
        else:
            followed.clear()
            st.success(f"Stored {len(latest['forecasts'])} forecasts as of {latest['as_of']}.")
            for ticker, reason in latest["omitted"].items():
                st.warning(f"Left out {ticker}: {reason}.")
    if not latest["forecasts"]:
        st.info(
            "No forecast stored for this run yet: Forecast now scores every ticker as of the "
            "dataset's last feature date (or run `trendlab forecast RUN`)."
        )
        return
    table = pd.DataFrame(latest["forecasts"])
    st.subheader(f"Forecast as of {latest['as_of']}")
    st.caption(
        f"Bands: the run's test errors (target - score), {latest['band']['low_quantile']:.0%} "
        f"to {latest['band']['high_quantile']:.0%}; target date = as-of date + horizon."
    )
    charts.show(st, charts.forecast_figure(table), key=f"forecast-chart-{run_id}")
    shown = table.drop(columns="probabilities")
    st.dataframe(shown.style.format(precision=3), hide_index=True)


def live_section(run_id: int) -> None:
    """Live against backtest per horizon, feature drift, and the retrain decisions."""
    st.subheader("Live against the backtest")
    as_of = latest_forecasts(engine=engine(), run_id=run_id)["as_of"]
    if as_of is None:
        st.info(
            "No stored forecasts yet: make one on the Predict page (or `trendlab forecast "
            "RUN`); once an update brings their outcomes they are followed here."
        )
        decisions_table(run_id)
        return
    try:
        result = followed(str(engine().url), run_id, as_of)
    except (StorageError, CheckpointError) as error:
        st.error(said(error))
        return
    for horizon, section in result["horizons"].items():
        tone = st.warning if section["status"] == "left" else st.caption
        tone(f"{horizon}: {section['sentence']}.")
        daily = pd.DataFrame(section["daily"], columns=["as_of", "ic", "rank_ic", "long_short"])
        if not daily.empty:
            figure = charts.live_figure(
                daily,
                low=section["backtest_low"],
                high=section["backtest_high"],
                horizon=horizon,
            )
            charts.show(st, figure, key=f"live-{run_id}-{horizon}")
    drift = result["drift"]
    st.caption(f"Feature drift (PSI) of {drift['basis']} against the training rows.")
    st.dataframe(
        pd.DataFrame([{"group": group, **figures} for group, figures in drift["groups"].items()]),
        hide_index=True,
    )
    decisions_table(run_id)


def decisions_table(run_id: int) -> None:
    """The rolling-retrain decisions recorded for the run's dataset, if any."""
    try:
        dataset = run_dataset_name(engine(), run_id)
    except StorageError as error:  # the run's dataset was deleted
        st.error(said(error))
        return
    decisions = promotion_table(engine=engine(), dataset=dataset)
    if not decisions.empty:
        st.caption("Rolling retrains of this dataset's serving run, oldest first.")
        st.dataframe(decisions, hide_index=True)
