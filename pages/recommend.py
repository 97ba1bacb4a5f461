"""Recommend: items for a user from the recommender runs."""

import streamlit as st

from pages.shared import engine
from storage.repository import list_runs, session_scope

st.title("Recommend")
st.caption("Recommendations from a trained two-tower model.")

with session_scope(engine()) as session:
    recommenders = list_runs(session=session, model_kind="two_tower")

if not recommenders:
    st.info("No recommender trained yet.")
    st.stop()

st.selectbox("Model run", [r.id for r in recommenders])
