"""Home: where Trendlab keeps its files and what the database holds."""

import streamlit as st

from pages.run_table import SHOWN
from pages.shared import data_home, engine
from services import catalog
from services.registry import models_on
from services.runs import checkpoint_problems
from services.runs_table import runs_table

st.title("Trendlab")
st.caption("Train, compare and serve market-trend models.")

home = data_home()
db = engine()
counts = catalog.overview(engine=db)
recent = catalog.runs(engine=db)[:10]
problems = checkpoint_problems(engine=db)


def count(things: list, noun: str) -> str:
    return f"{len(things)} {noun}{'' if len(things) == 1 else 's'}"


@st.fragment(run_every=5)
def path() -> None:
    """Data -> Train -> Evaluate -> Predict (and Recommend): what exists at each step, and a
    link to the step that comes next. Refreshes while the first-start demo jobs train."""
    markets = catalog.datasets(engine=db, recommender=False)
    shops = catalog.datasets(engine=db, recommender=True)
    runs = catalog.runs(engine=db)
    working = [j for j in catalog.jobs(engine=db) if not j.finished]
    finished = [r for r in runs if r.status == "succeeded"]
    market = [r for r in finished if r.model in models_on("predict")]
    served = [r for r in finished if r.model in models_on("recommend")]
    steps = [
        (
            "Data",
            "/data",
            bool(markets),
            f"{count(markets, 'market dataset')}, {count(shops, 'recommender dataset')}"
            if markets or shops
            else "no dataset yet: build or import one",
        ),
        (  # ticked once a run finished: a first demo training does not send anyone ahead
            "Train",
            "/train",
            bool(finished),
            f"{count(working, 'job')} queued or training, {count(finished, 'run')} finished"
            if runs or working
            else "no model trained yet",
        ),
        (
            "Evaluate",
            "/evaluate",
            bool(market),
            f"{count(market, 'market run')} to evaluate beside the baselines"
            if market
            else "waiting for a finished market run",
        ),
        (
            "Predict",
            "/predict",
            bool(market),
            "what-if scores of any finished run" if market else "waiting for a finished market run",
        ),
        (
            "Recommend",
            "/recommend",
            bool(served),
            f"serving recommender run {served[0].id}"
            if served
            else "content-based until a recommender is trained",
        ),
    ]
    columns = st.columns(len(steps))
    for column, (name, link, ready, status) in zip(columns, steps, strict=True):
        icon = ":material/check_circle:" if ready else ":material/hourglass_empty:"
        column.markdown(f"{icon} **[{name}]({link})**  \n{status}")
    upcoming = next((s for s in steps if not s[2]), None)
    if upcoming:
        waiting = " (a demo job is training)" if working else ""
        st.markdown(f"**Next:** [{upcoming[0]}]({upcoming[1]}){waiting}")
    else:
        st.markdown("**Next:** compare runs on [Evaluate](/evaluate) or try [Predict](/predict).")


path()

left, middle, right = st.columns(3)
left.metric("Datasets", counts["datasets"])
middle.metric("Runs", counts["runs"])
right.metric("Jobs", counts["jobs"])

st.subheader("Where things live")
st.markdown(
    f"- Data home: `{home.root}`\n"
    f"- Database: `{home.database_url}` (schema version {counts['schema_version']})\n"
    f"- Checkpoints: `{home.checkpoints}`"
)

st.subheader("Recent runs")
if not recent:
    st.info("No runs yet. Build a dataset on the Data page, then train a model on the Train page.")
else:
    table = runs_table(engine=db, runs=recent)
    table["checkpoint"] = [problems.get(r.id, "") for r in recent]
    st.dataframe(table, hide_index=True, column_config=SHOWN)
    st.caption("Every run, filtered, named and tagged: the [Evaluate](/evaluate) page.")
