"""Predict: what-if scores for one row of a run's dataset, and batch scoring of a CSV."""

import datetime as dt

import pandas as pd
import plotly.express as px
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.checkpoints import CheckpointError
from core.exports import spreadsheet_csv
from core.market.features import CONTEXT_FEATURE_GROUPS, CONTEXT_FEATURES, STOCK_FEATURES
from core.market.predict import PredictionInputError, Predictor, predict_csv
from pages import charts
from pages.access import refused
from pages.following import forecast_tab
from pages.shared import MAX_UPLOAD_MB, engine, said
from services import catalog
from services.catalog import StorageError
from services.market.batch_inputs import batch_columns, template_rows
from services.market.evaluation import run_dataset, run_predictor
from services.market.what_ifs import (
    ScoreSpread,
    SliderScale,
    class_rule,
    run_training_rows,
    score_spreads,
    slider_scales,
)
from services.registry import models_on
from services.runs import checkpoint_problems

st.title("Predict")
st.caption(
    "Change a row's features and see the model's scores move at each horizon, or score a CSV."
)


@st.cache_resource(show_spinner=False, max_entries=8)
def predictor(database_url: str, run_id: int) -> Predictor:
    return run_predictor(engine=engine(), run_id=run_id)


@st.cache_resource(show_spinner="Loading the run's dataset...", max_entries=4)
def dataset(database_url: str, run_id: int) -> pd.DataFrame:
    frame = run_dataset(engine=engine(), run_id=run_id)
    return frame.assign(date=pd.to_datetime(frame["date"])).sort_values(["ticker", "date"])


@st.cache_data(show_spinner=False, max_entries=8)
def slider_scales_of(database_url: str, run_id: int) -> dict[str, SliderScale]:
    """The context sliders' scales, from the run's training rows."""
    train = run_training_rows(dataset(database_url, run_id), predictor(database_url, run_id))
    return slider_scales(train, CONTEXT_FEATURES)


runs = [
    (r.id, r.model)
    for r in catalog.runs_with_checkpoint(engine=engine())
    if r.model in models_on("predict")  # recommenders live on the Recommend page
]
if not runs:
    st.info("No run with a checkpoint yet. Train a model on the Train page.")
    st.stop()

problems = checkpoint_problems(engine=engine())
names = {
    run_id: f"run {run_id} · {model}" + (" · checkpoint problem" if run_id in problems else "")
    for run_id, model in runs
}
linked = st.query_params.get("run", "")
run_id = st.selectbox(
    "Run",
    list(names),
    index=list(names).index(int(linked)) if linked.isdigit() and int(linked) in names else 0,
    format_func=names.get,
)
url = str(engine().url)
if run_id in problems:  # checked on every visit: the cached model may be of other bytes
    st.error(f"Run {run_id}: {problems[run_id]}.")
    st.stop()
try:
    model = predictor(url, run_id)
except (StorageError, CheckpointError) as error:
    st.error(said(error))
    st.stop()
spec = model.spec
what_if, batch, forecast = st.tabs(["What-if", "Batch", "Forecast"])


def scores(
    place: DeltaGenerator,
    table: pd.DataFrame,
    base: pd.DataFrame,
    spreads: dict[int, ScoreSpread],
) -> None:
    """Per horizon: the score with its change from the unmodified row, that change in standard
    deviations of the model's test scores, the class, and the class probabilities of both."""
    for column, h in zip(place.columns(len(model.horizons)), model.horizons, strict=True):
        score, before = float(table[f"score_{h}d"].iloc[0]), float(base[f"score_{h}d"].iloc[0])
        moved = abs(score - before) >= 5e-4
        column.metric(
            f"{h}-day score",
            f"{score:+.3f}",
            delta=f"{score - before:+.3f} vs the row" if moved else None,
            help=None if moved else "Same as the unmodified row.",
        )
        if h in spreads:
            column.caption(spreads[h].sentence(score - before))
        column.write(f"Predicted class: **{table[f'class_{h}d'].iloc[0]}**")
        probabilities = pd.DataFrame(
            [
                {
                    "class": name,
                    "input": label,
                    "probability": float(frame[f"p_{name}_{h}d"].iloc[0]),
                }
                for label, frame in (("the row", base), ("what-if", table))
                for name in spec.target.class_names
            ]
        )
        charts.show(
            column,
            px.bar(
                probabilities,
                x="class",
                y="probability",
                color="input",
                barmode="group",
                range_y=[0, 1],
                height=280,
                title=f"{h}-day class probabilities: the row and the what-if",
            ),
            key=f"probabilities-{h}",
        )
    missing = [f"{h}-day" for h in model.horizons if h not in spreads]
    if missing:
        place.caption(
            f"Run {run_id} has no stored test scores at {', '.join(missing)}, so a change there "
            "has no scale; evaluating the run (the Evaluate page) stores them."
        )
    place.caption(class_rule(model))


def context_sliders(place: DeltaGenerator, row: pd.DataFrame, key: str) -> pd.DataFrame:
    """The row's context features as sliders on its training rows' scales, one tab per group;
    the row as changed, without the columns of a group marked unknown."""
    changed = row.copy()
    scales = slider_scales_of(url, run_id)
    groups = list(CONTEXT_FEATURE_GROUPS.items())
    tabs = place.tabs([f"{group.capitalize()} ({len(features)})" for group, features in groups])
    for tab, (group, features) in zip(tabs, groups, strict=True):
        observed = bool(row[features].notna().all(axis=1).iloc[0])
        unknown = tab.checkbox(
            "unknown (masked)",
            value=not observed,
            key=f"{key}:{group}:unknown",
            help="The model sees this group as missing, as in rows without such data.",
        )
        for feature in features:
            scale = scales[feature]
            low, high, value = scale.around(float(row[feature].iloc[0]))
            changed.loc[0, feature] = tab.slider(
                feature,
                min_value=low,
                max_value=high,
                value=value,
                step=scale.step,
                format=scale.format,
                key=f"{key}:{feature}",
                disabled=unknown,
            )
        if unknown:  # absent columns are how the model is told a group is missing
            changed = changed.drop(columns=features)
    return changed


def what_if_tab() -> None:
    """One row of the run's dataset with its features as sliders, scored as they move; the
    sliders on the left, the scores beside them."""
    try:
        frame = dataset(url, run_id)
    except StorageError as error:
        st.error(said(error))  # batch scoring below still works
        return
    left, right = st.columns(2)
    ticker = left.selectbox("Ticker", sorted(frame["ticker"].unique()))
    history = frame[frame["ticker"] == ticker]
    first, last = history["date"].min().date(), history["date"].max().date()
    chosen = right.date_input("Date", value=last, min_value=first, max_value=last)
    history = history[history["date"] <= pd.Timestamp(chosen)]
    row = history.tail(1).reset_index(drop=True)
    day = row["date"].iloc[0].date()
    if day != chosen:
        right.caption(f"No row on {chosen}; using the last one before it, {day}.")
    generation = st.session_state.setdefault("what_if_generation", 0)
    key = f"{run_id}:{ticker}:{day}:{generation}"
    inputs, results = st.columns([3, 2], gap="large")

    changed = row.copy() if spec.sequence else context_sliders(inputs, row, key)
    with inputs.expander(
        "Stock features" + (" of the last step in the window" if spec.sequence else "")
    ):
        stock = st.data_editor(
            row[STOCK_FEATURES].T.rename(columns={0: "value"}).rename_axis("feature"),
            key=f"{key}:stock",
            disabled=["feature"],
            height=300,
        )
    changed[STOCK_FEATURES] = stock["value"].to_numpy()[None, :]
    if inputs.button("Reset to the row's values"):
        st.session_state["what_if_generation"] = generation + 1
        st.rerun()

    try:
        # A cross-sectional model ranks each row against the date's other tickers.
        others = frame if model.cross_sectional else None
        if spec.sequence:  # the window ends at the chosen row; only its last step is edited
            base = model.predict_frame(history, others)
            edited = pd.concat([history.iloc[:-1], changed], ignore_index=True)
            table = model.predict_frame(edited, others)
        else:
            base, table = model.predict_frame(row, others), model.predict_frame(changed, others)
    except PredictionInputError as error:
        results.error(f"{ticker} on {day}: {error}")
        return
    results.subheader(f"{spec.name} on {ticker}, {day}")
    scores(
        results, table, base, score_spreads(engine=engine(), run_id=run_id, horizons=model.horizons)
    )
    attention = table.filter(regex=r"^attention_\d+$")
    if not attention.empty:
        steps = len(attention.columns)
        charts.show(
            results,
            px.bar(
                x=[f"t-{steps - 1 - i}" for i in range(steps)],
                y=attention.iloc[0].to_numpy(),
                labels={"x": "input step (weeks back)", "y": "attention weight"},
                title="Attention over the input window",
                height=300,
            ),
            key="attention",
        )


def template_download() -> None:
    """The CSV batch scoring reads: its columns, with an example from the run's dataset."""
    try:
        template = template_rows(model, dataset(url, run_id))
        example = (
            f"its last window ({model.sequence_length} steps) of one ticker"
            if spec.sequence
            else "one row"
        )
    except StorageError:
        template, example = pd.DataFrame(columns=batch_columns(model)), "no row (no dataset)"
    st.download_button(
        "Download a template (CSV)",
        spreadsheet_csv(template),
        file_name=f"run_{run_id}_batch_template.csv",
        mime="text/csv",
        on_click="ignore",
        help=f"The {len(template.columns)} columns this run reads, with {example} as an example.",
    )


with what_if:
    what_if_tab()

with batch:
    if not refused("uploading rows to score"):
        st.write(
            "Upload rows with the dataset's feature columns (and `date`, `ticker`). Missing "
            "context columns mark that group unknown; every stock feature is required."
            + (" Sequence models score each ticker's last window." if spec.sequence else "")
        )
        template_download()
        upload = st.file_uploader("Feature rows (CSV)", type=["csv"], key="batch")
        if upload is not None:
            try:
                table = predict_csv(
                    model, upload.getvalue(), name=upload.name, max_bytes=MAX_UPLOAD_MB * 2**20
                )
            except PredictionInputError as error:
                st.error(said(error))
            else:
                st.success(f"Scored {len(table):,} rows.")
                st.dataframe(table, hide_index=True)
                st.caption(class_rule(model))
                st.download_button(
                    "Download predictions (CSV)",
                    spreadsheet_csv(table),
                    file_name=f"run_{run_id}_predictions_{dt.date.today()}.csv",
                    mime="text/csv",
                )

with forecast:
    forecast_tab(run_id)
