"""Evaluate: metrics of finished runs, epoch by epoch."""

import streamlit as st

from pages.shared import engine
from storage.models import JobStatus
from storage.repository import list_metrics, list_runs, session_scope

st.title("Evaluate")
st.caption("Compare finished runs on the metrics they recorded.")

with session_scope(engine()) as session:
    finished = [r for r in list_runs(session=session) if r.status == JobStatus.SUCCEEDED]

if not finished:
    st.info("No finished runs yet. Train a model on the Train page.")
    st.stop()

run_id = st.selectbox("Run", [r.id for r in finished])
with session_scope(engine()) as session:
    metrics = list_metrics(session=session, run_id=run_id)
st.dataframe(
    [{"epoch": m.epoch, "split": m.split, "metric": m.name, "value": m.value} for m in metrics],
    hide_index=True,
)
