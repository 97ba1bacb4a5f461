"""Recommend: startups for a developer (or any items for any users), routed by history."""

import pandas as pd
import streamlit as st

from core.recsys.engine_comparison import engine_top, score_format, shared_items
from core.recsys.serving import Recommendation, Recommender
from core.recsys.training import MODEL_NAME
from pages import charts
from pages.access import read_only
from pages.shared import data_home, engine, said
from services import catalog
from services.catalog import StorageError
from services.recsys.serving import (
    active_run,
    evaluated_users,
    load_serving,
    metrics_cells,
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


def label(side: str, field: str) -> str:
    """A form label that says whose field it is: ``User location``, ``Item location``."""
    return f"{side} {field.replace('_', ' ')}"


def filters_from(container, key: str) -> dict[str, str]:
    """One select per short categorical item field (type, sector, stage, ...)."""
    fields = recommender.catalogue.encoder.item.fields.categorical
    chosen = {}
    for column, field in zip(container.columns(len(fields)), fields, strict=True):
        options = [ANY, *sorted(items[field].astype(str).unique())]
        value = column.selectbox(
            label("Item", field),
            options,
            key=f"{key}:{field}",
            help=f"Only items whose `{field}` (a column of the items table) is this.",
        )
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
        column_config={
            "score": st.column_config.NumberColumn(
                format=score_format(answer.items["score"].to_numpy())
            )
        },
        key=key,
    )


known, new, compare, models = st.tabs(["Known user", "New user", "Compare engines", "Models"])

counts = recommender.counts
user_ids = users["user_id"].tolist()


def described(user_id: str) -> str:
    """A user in a picker: id, interactions and tier (cold, warm, hot)."""
    tier = recommender.route(user_id)[1].split(":")[0]
    return f"{user_id} · {int(counts.get(user_id, 0))} interactions · {tier}"


with known:
    left, middle, right = st.columns([2, 1, 1])
    user = left.selectbox("User", user_ids, format_func=described, key="user")
    engine_name = middle.selectbox("Engine", recommender.engines())
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
            told = f"The new user's `{field}` (a column of the users table)."
            if field in fields.multi:
                picked = cell.multiselect(label("User", field), values[field], help=told)
                profile[field] = ";".join(picked)
            else:
                profile[field] = cell.selectbox(label("User", field), values[field], help=told)
        if fields.text:
            profile[fields.text] = st.text_area(
                label("User", fields.text),
                placeholder="What you build, what you like",
                help=f"The new user's `{fields.text}` (a column of the users table): their own "
                "words, matched to the items' texts.",
            )
        chosen = filters_from(st, "new")
        asked = st.form_submit_button("Recommend", type="primary")
    if asked:
        try:
            show(recommender.recommend_profile(profile, limit=10, filters=chosen), "new")
        except ValueError as error:
            st.error(said(error))

with compare:
    left, right = st.columns([1, 2])
    compared = left.selectbox(
        "User to compare engines for",
        user_ids,
        index=user_ids.index(user),
        format_func=described,
        key="compare-user",
        help="Type to search; starts at the user chosen under Known user.",
    )
    offered = recommender.engines(auto=False)
    picked = right.multiselect("Engines", offered, default=offered, key="compare-engines")
    st.caption(
        "Score: each engine's own, on its own scale. Normalised: the item's percentile among "
        "that engine's scores of the whole catalogue for this user, items they already have "
        "included (100 %: nothing scores higher)."
    )
    tops = {}
    for start in range(0, len(picked), 3):
        for column, name in zip(st.columns(3), picked[start : start + 3], strict=False):
            try:
                tops[name] = answer = engine_top(recommender, compared, name, limit=10)
            except ValueError as error:
                column.error(f"{name}: {said(error)}")
                continue
            column.markdown(
                f"**{name}**" + (f" (as {answer.engine})" if answer.engine != name else "")
            )
            column.dataframe(
                answer.items.drop(columns="item_id") if "name" in answer.items else answer.items,
                hide_index=True,
                key=f"cmp-{name}",
                column_config={
                    "score": st.column_config.NumberColumn(
                        "score", format=score_format(answer.items["score"].to_numpy())
                    ),
                    "normalised": st.column_config.NumberColumn(
                        "normalised %", format="%.1f", help="Percentile among this engine's scores"
                    ),
                },
            )
    shared = shared_items(tops)
    if shared:
        st.caption(
            f"Items of {next(iter(tops))}'s top 10 also in: "
            + ", ".join(f"{name} {count}" for name, count in shared.items())
            + "."
        )

with models:
    registry = pd.DataFrame(recommender_runs(engine=engine()))
    if registry.empty:
        st.info("No recommender trained yet.")
    else:
        first = [c for c in ("run", "active", "dataset") if c in registry]
        last = [c for c in ("created", "size_mb") if c in registry]
        scores = [c for c in registry if c not in first + last]
        st.dataframe(
            registry,
            hide_index=True,
            column_order=[*first, *scores, *last],
            column_config={
                "run": st.column_config.NumberColumn("run", pinned=True),
                **{c: st.column_config.NumberColumn(format="%.3f") for c in scores},
            },
        )
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
                f"{evaluated_users(report, segment)}): mean (low..high), the 95 % interval by "
                "bootstrap over test users"
            )
            st.dataframe(
                metrics_cells(report, segment),
                key=f"report-{segment}",
                column_config={"engine": st.column_config.TextColumn("engine", pinned=True)},
            )
        curves = epoch_curves(engine=engine(), run_ids=[chosen_run])
        if not curves.empty:
            shown = curves[curves["name"].isin(["total", "ndcg@10", "recall@10"])]
            figure = charts.curves_figure(
                shown, title=f"Run {chosen_run}: loss and ranking per epoch", height=320
            )
            epochs = int(shown["epoch"].max())
            figure.update_xaxes(tick0=0, dtick=max(1, -(-epochs // 10)), tickformat="d")
            charts.show(st, figure, key="recsys-curves")

    st.markdown(
        f"Train a recommender on the [Train page](/train) (model **{MODEL_NAME}**); when it "
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
