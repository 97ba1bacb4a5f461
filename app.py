"""Trendlab dashboard: the pages, listed explicitly (run with `make run` or `trendlab serve`)."""

import streamlit as st

from pages.access import require_password, signed_in

st.set_page_config(page_title="Trendlab", page_icon=":material/monitoring:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/database:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/online_prediction:"),
    st.Page("pages/recommend.py", title="Recommend", icon=":material/recommend:"),
]

# Navigation first (so a deep link never runs a page on its own), then the gate, then the page.
page = st.navigation(PAGES, position="sidebar" if signed_in() else "hidden")
require_password()  # a no-op unless TRENDLAB_PASSWORD is set; stops until it is given
page.run()
