"""Data: the datasets Trendlab has stored, with the recipe that built each."""

import streamlit as st

from pages.shared import engine
from storage.repository import list_datasets, session_scope

st.title("Data")
st.caption("Datasets of prices, context features and labels, stored in the database.")

with session_scope(engine()) as session:
    datasets = list_datasets(session=session)

if not datasets:
    st.info("No datasets yet.")
else:
    st.dataframe(
        [
            {
                "name": d.name,
                "kind": d.kind,
                "source": d.source,
                "tickers": ", ".join(d.tickers),
                "from": d.start_date,
                "to": d.end_date,
                "rows": d.row_count,
                "features": len(d.features),
                "created": d.created_at,
            }
            for d in datasets
        ],
        hide_index=True,
    )
    chosen = st.selectbox("Recipe of", [d.name for d in datasets])
    st.json(next(d.recipe for d in datasets if d.name == chosen))
