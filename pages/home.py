"""Home: where Trendlab keeps its files and what the database holds."""

import streamlit as st

from pages.shared import data_home, engine
from services import catalog
from services.runs import checkpoint_problems

st.title("Trendlab")
st.caption("Train, compare and serve market-trend models. Start on the Data page.")

home = data_home()
db = engine()
counts = catalog.overview(engine=db)
recent = catalog.runs(engine=db)[:10]
problems = checkpoint_problems(engine=db)

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
    st.dataframe(
        [
            {
                "run": run.id,
                "model": run.model,
                "status": run.status,
                "created": run.created_at,
                "checkpoint": problems.get(run.id, "ok" if run.summary.get("epochs") else ""),
                **{k: v for k, v in run.summary.items() if isinstance(v, int | float)},
            }
            for run in recent
        ],
        hide_index=True,
    )
