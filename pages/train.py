"""Train: training runs and the background jobs behind them."""

import streamlit as st

from pages.shared import engine
from storage.repository import list_jobs, list_runs, session_scope

st.title("Train")
st.caption("Runs and jobs, newest first.")

with session_scope(engine()) as session:
    runs = list_runs(session=session)
    jobs = list_jobs(session=session)

st.subheader("Runs")
if not runs:
    st.info("No runs yet.")
else:
    st.dataframe(
        [
            {
                "run": r.id,
                "model": r.model_kind,
                "dataset": r.dataset_id,
                "seed": r.seed,
                "status": r.status,
                "started": r.started_at,
                "finished": r.finished_at,
                "resumed from": r.parent_run_id,
            }
            for r in runs
        ],
        hide_index=True,
    )

st.subheader("Jobs")
if not jobs:
    st.info("No jobs yet.")
else:
    st.dataframe(
        [
            {
                "job": j.id,
                "kind": j.kind,
                "run": j.run_id,
                "status": j.status,
                "created": j.created_at,
                "finished": j.finished_at,
                "error": j.error,
            }
            for j in jobs
        ],
        hide_index=True,
    )
