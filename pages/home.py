"""Home: where Trendlab keeps its files and what the database holds."""

import streamlit as st

from pages.shared import data_home, engine
from services.runs import checkpoint_problems
from storage.db import schema_version
from storage.repository import count_rows, list_runs, session_scope

st.title("Trendlab")
st.caption("Train, compare and serve market-trend models. Start on the Data page.")

home = data_home()
db = engine()
with session_scope(db) as session:
    counts = count_rows(session=session)
    recent = list_runs(session=session)[:10]
problems = checkpoint_problems(engine=db)

left, middle, right = st.columns(3)
left.metric("Datasets", counts["datasets"])
middle.metric("Runs", counts["runs"])
right.metric("Jobs", counts["jobs"])

st.subheader("Where things live")
st.markdown(
    f"- Data home: `{home.root}`\n"
    f"- Database: `{home.database_url}` (schema version {schema_version(db)})\n"
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
                "model": run.model_kind,
                "status": run.status,
                "created": run.created_at,
                "checkpoint": problems.get(
                    run.id, "ok" if run.summary_metrics.get("epochs") else ""
                ),
                **{k: v for k, v in run.summary_metrics.items() if isinstance(v, int | float)},
            }
            for run in recent
        ],
        hide_index=True,
    )
