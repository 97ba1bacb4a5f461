"""Recommend: startups for a developer (or any items for any users), routed by history."""

import pandas as pd
import streamlit as st

from core.recsys.serving import ENGINES, Recommendation, Recommender
from pages import charts
from pages.access import read_only
from pages.shared import data_home, engine, said
from services import catalog
from services.catalog import StorageError
from services.recsys import (
    active_run,
    load_serving,
    metrics_table,
    recommender_report,
    recommender_runs,
    set_active_run,
    verdict_lines,
)
from services.reports import epoch_curves

st.title("Recommend")

try:
    recommender: Recommender = load_serving(engine=engine(), home=data_home())
except StorageError as error:
    if active_run(engine=engine()) is None:
        st.info(f"{error} `trendlab serve` stores a demo one on first start.")
    else:
        st.error(said(error))
    st.stop()
active = active_run(engine=engine())
st.caption(
    f"Serving recommender run {active}: {recommender.served} for warm and hot users "
    f"({recommender.served_because or 'the trained model'}), content-based for cold ones."
    if active
    else "No trained model yet: content-based and popularity only. Train one under Models."
)

ANY = "any"
items = recommender.items
users = recommender.users


def filters_from(container, key: str) -> dict[str, str]:
    """One select per short categorical item field (type, sector, stage, ...)."""
    fields = recommender.catalogue.encoder.item.fields.categorical
    chosen = {}
    for column, field in zip(container.columns(len(fields)), fields, strict=True):
        options = [ANY, *sorted(items[field].astype(str).unique())]
        value = column.selectbox(field, options, key=f"{key}:{field}")
        if value != ANY:
            chosen[field] = value
    return chosen


def show(answer: Recommendation, key: str) -> None:
    st.markdown(f"**Engine: {answer.engine}**: {answer.reason}")
    shown = [
        c
        for c in ("rank", "score", "name", "item_id", "type", "sector", "stage")
        if c in answer.items
    ]
    st.dataframe(
        answer.items[[*shown, "why"]],
        hide_index=True,
        column_config={"score": st.column_config.NumberColumn(format="%.3f")},
        key=key,
    )


known, new, compare, models = st.tabs(["Known user", "New user", "Compare engines", "Models"])

counts = recommender.counts
with known:
    left, middle, right = st.columns([2, 1, 1])
    user = left.selectbox(
        "User",
        users["user_id"].tolist(),
        format_func=lambda u: (
            f"{u} · {int(counts.get(u, 0))} interactions · " + recommender.route(u)[1].split(":")[0]
        ),
        key="user",
    )
    choices = [e for e in ENGINES if e != "ranker" or recommender.ranker is not None]
    if not active:
        choices = ["auto", "content", "popularity"]
    engine_name = middle.selectbox("Engine", choices)
    limit = right.slider("How many", 1, 50, 10)
    chosen = filters_from(st, "known")
    try:
        show(recommender.recommend(user, limit=limit, engine=engine_name, filters=chosen), "known")
    except ValueError as error:
        st.error(said(error))
    with st.expander("This user's profile and history"):
        st.dataframe(users[users["user_id"] == user], hide_index=True)
        history = recommender.catalogue.data.interactions
        st.dataframe(
            history[history["user_id"] == user].merge(items, on="item_id")[
                ["timestamp", "interaction", "item_id", "name"]
            ],
            hide_index=True,
        )

with new:
    st.write("Describe a developer who is not in the data yet; they get content-based results.")
    fields = recommender.catalogue.encoder.user.fields
    values = recommender.catalogue.encoder.user.values
    with st.form("profile"):
        profile: dict[str, str] = {}
        columns = st.columns(2)
        for index, field in enumerate([*fields.multi, *fields.categorical]):
            cell = columns[index % 2]
            if field in fields.multi:
                profile[field] = ";".join(cell.multiselect(field, values[field]))
            else:
                profile[field] = cell.selectbox(field, values[field])
        if fields.text:
            profile[fields.text] = st.text_area(
                fields.text, placeholder="What you build, what you like"
            )
        chosen = filters_from(st, "new")
        asked = st.form_submit_button("Recommend", type="primary")
    if asked:
        try:
            show(recommender.recommend_profile(profile, limit=10, filters=chosen), "new")
        except ValueError as error:
            st.error(said(error))

with compare:
    st.write(f"The engines side by side for **{user}** (chosen under Known user).")
    engines = ["two_tower", "content", "popularity"] if active else ["content", "popularity"]
    if active and recommender.served not in engines:
        engines.insert(0, recommender.served)
    lists = {}
    for column, name in zip(st.columns(len(engines)), engines, strict=True):
        answer = recommender.recommend(user, limit=10, engine=name)
        lists[name] = set(answer.items["item_id"])
        column.markdown(f"**{name}**")
        column.dataframe(
            answer.items[["rank", "name", "score"]], hide_index=True, key=f"cmp-{name}"
        )
    if len(engines) > 1:
        overlap = len(lists[engines[0]] & lists[engines[1]])
        st.caption(f"{engines[0]} and {engines[1]} share {overlap} of their top 10.")

with models:
    registry = pd.DataFrame(recommender_runs(engine=engine()))
    if registry.empty:
        st.info("No recommender trained yet.")
    else:
        st.dataframe(registry, hide_index=True)
        left, right = st.columns([3, 1])
        chosen_run = left.selectbox("Run", registry["run"].tolist(), key="model-run")
        if not read_only() and right.button("Serve this run", disabled=chosen_run == active):
            set_active_run(engine=engine(), run_id=chosen_run)
            st.rerun()
        report = recommender_report(engine=engine(), run_id=chosen_run)
        for line in verdict_lines(report):
            st.markdown(line.strip() if line.startswith("  ") else f"**{line}**")
        for segment in ("all_users", "cold_users"):
            st.markdown(
                f"**Test metrics, {segment.replace('_', ' ')}** (k = {report['k']}; "
                "low .. high: 95 % interval, bootstrap over test users)"
            )
            table = metrics_table(report, segment)
            st.dataframe(
                table,
                key=f"report-{segment}",
                column_config={
                    c: st.column_config.NumberColumn(format="%.3f") for c in table.columns
                },
            )
        curves = epoch_curves(engine=engine(), run_ids=[chosen_run])
        if not curves.empty:
            shown = curves[curves["name"].isin(["total", "ndcg@10", "recall@10"])]
            charts.show(
                st,
                charts.curves_figure(
                    shown, title=f"Run {chosen_run}: loss and ranking per epoch", height=320
                ),
                key="recsys-curves",
            )

    st.markdown(
        "Train a recommender on the [Train page](/train) (model **two_tower**); when it "
        "finishes it serves here and on the API."
    )

    @st.fragment(run_every=2)
    def progress() -> None:
        """The newest recommender job; when one that ran finishes, the page reloads so the new
        run is listed and served."""
        mine = catalog.jobs(engine=engine(), kind="train_recommender")
        if not mine:
            return
        job = mine[0]
        if job.running and job.progress.get("epochs"):
            st.session_state["recsys_job"] = job.id
            st.progress(
                min(job.progress["epoch"] / job.progress["epochs"], 1.0),
                text=f"job {job.id}: epoch {job.progress['epoch']} of {job.progress['epochs']}",
            )
        else:
            st.caption(f"Latest recommender job {job.id}: {job.status}")
        if st.session_state.get("recsys_job") == job.id and job.finished:
            del st.session_state["recsys_job"]
            st.rerun(scope="app")

    progress()
