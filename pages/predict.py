"""Predict: what-if scores from a trained run."""

import streamlit as st

from pages.shared import engine
from storage.repository import list_runs_with_artifact, session_scope

st.title("Predict")
st.caption("Pick a trained run to score rows with it.")

with session_scope(engine()) as session:
    with_checkpoint = list_runs_with_artifact(session=session, kind="checkpoint")

if not with_checkpoint:
    st.info("No run with a checkpoint yet. Train a model on the Train page.")
    st.stop()

st.selectbox("Run", [f"{r.id} · {r.model_kind}" for r in with_checkpoint])
