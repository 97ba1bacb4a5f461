"""Trendlab dashboard: the pages, listed explicitly (run with `make run` or `trendlab serve`)."""

import streamlit as st

st.set_page_config(page_title="Trendlab", page_icon=":material/monitoring:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/database:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/online_prediction:"),
    st.Page("pages/recommend.py", title="Recommend", icon=":material/recommend:"),
]

st.navigation(PAGES).run()
