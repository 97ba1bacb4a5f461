"""The Data page's view of a recommender dataset: its size and sparsity, how interactions
spread over users and items (the long tail every recommender meets), over time, and its rows."""

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from core.recsys.synthetic import RecsysData
from pages import charts


def concentration(counts: pd.Series, share: float) -> float:
    """The share of all interactions held by the top ``share`` of items (at least one)."""
    ordered = counts.sort_values(ascending=False)
    top = max(1, round(share * len(ordered)))
    return float(ordered.iloc[:top].sum() / max(ordered.sum(), 1))


def explore(data: RecsysData) -> None:
    events = data.interactions
    users, items = events["user_id"].nunique(), events["item_id"].nunique()
    pairs = len(events.drop_duplicates(["user_id", "item_id"]))
    per_user = events.groupby("user_id").size()
    per_item = events.groupby("item_id").size()
    places = st.columns(5)
    places[0].metric("Interactions", f"{len(events):,}")
    places[1].metric("Users", f"{users:,}", help=f"{len(data.users):,} in the users table")
    places[2].metric("Items", f"{items:,}", help=f"{len(data.items):,} in the items table")
    places[3].metric(
        "Density",
        f"{pairs / max(users * items, 1):.3%}",
        help="Distinct user-item pairs over users x items: the share of the matrix filled.",
    )
    places[4].metric(
        "Top 10 % of items",
        f"{concentration(per_item, 0.10):.0%}",
        help="Share of all interactions on the most popular tenth of the items.",
    )
    st.caption(
        f"A user has a median of {per_user.median():.0f} interactions (most: {per_user.max():,}); "
        f"an item a median of {per_item.median():.0f} (most: {per_item.max():,}). Users with "
        "few interactions are the cold segment the recommender routes apart."
    )
    spread, over_time, rows = st.tabs(["Users and items", "Over time", "Rows"])
    with spread:
        left, right = st.columns(2)
        charts.show(
            left,
            px.histogram(
                per_user.rename("interactions").to_frame(),
                x="interactions",
                nbins=50,
                log_y=True,
                title="Interactions per user (users per bin, log scale)",
            ),
            key="recsys_per_user",
        )
        ranked = per_item.sort_values(ascending=False).to_numpy()
        tail = pd.DataFrame(
            {
                "items, most popular first (share of the catalogue)": np.arange(1, len(ranked) + 1)
                / len(ranked),
                "share of all interactions": np.cumsum(ranked) / ranked.sum(),
            }
        )
        figure = px.line(
            tail,
            x="items, most popular first (share of the catalogue)",
            y="share of all interactions",
            title="The long tail: interactions held by the most popular items",
        )
        figure.update_layout(xaxis_tickformat=".0%", yaxis_tickformat=".0%")
        charts.show(right, figure, key="recsys_tail")
        if "interaction" in events.columns:
            kinds = events["interaction"].value_counts().rename_axis("kind").reset_index()
            st.dataframe(kinds, hide_index=True)
    with over_time:
        if not data.recipe.get("timestamps", True):
            st.info("This log was imported without timestamps: every event is read at one time.")
        else:
            stamps = pd.to_datetime(events["timestamp"])
            weekly = stamps.dt.to_period("W").dt.start_time.value_counts().sort_index()
            charts.show(
                st,
                px.bar(
                    x=weekly.index,
                    y=weekly.to_numpy(),
                    labels={"x": "week", "y": "interactions"},
                    title="Interactions per week",
                ),
                key="recsys_weekly",
            )
    with rows:
        for name, frame in (("Interactions", events), ("Users", data.users), ("Items", data.items)):
            st.markdown(f"**{name}** ({len(frame):,} rows; the first 200)")
            st.dataframe(frame.head(200), hide_index=True)
