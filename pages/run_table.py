"""The runs table as the pages show it: filtered by text and tags, sortable by any column
(click a header), with a form to name and tag a run (services.runs_table builds the rows)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.access import read_only
from pages.shared import engine, said
from services.runs_table import filtered, label

SHOWN = {
    "run": st.column_config.NumberColumn("run", format="%d", width="small"),
    "primary": st.column_config.TextColumn("primary metric (95 % interval)", width="medium"),
    "collapsed": st.column_config.CheckboxColumn("collapsed"),
}


def show_runs(table: pd.DataFrame, *, key: str, editable: bool = True) -> pd.DataFrame:
    """Draw the table with its filters; the rows shown."""
    left, right = st.columns([2, 1])
    text = left.text_input(
        "Filter runs", key=f"{key}-text", placeholder="name, model, dataset, target, status..."
    )
    known = sorted({t for cell in table["tags"] for t in cell.split(", ") if t})
    tags = right.multiselect("Tags", known, key=f"{key}-tags") if known else []
    shown = filtered(table, text, tags)
    st.dataframe(shown, hide_index=True, column_config=SHOWN, key=f"{key}-table")
    if editable and not read_only() and len(table):
        with st.expander("Name or tag a run"), st.form(f"{key}-label"):
            run_id = st.selectbox("Run", list(table["run"]), key=f"{key}-run")
            name = st.text_input("Name (empty: unchanged)", key=f"{key}-name")
            added = st.text_input("Add tags (comma-separated)", key=f"{key}-add")
            removed = st.text_input("Remove tags (comma-separated)", key=f"{key}-remove")
            if st.form_submit_button("Save"):
                try:
                    found = label(
                        engine=engine(),
                        run_id=int(run_id),
                        name=name.strip() or None,
                        add=[t.strip() for t in added.split(",") if t.strip()],
                        remove=[t.strip() for t in removed.split(",") if t.strip()],
                    )
                except ValueError as error:
                    st.error(said(error))
                else:
                    st.success(
                        f"Run {found['run_id']}: name {found['name'] or '-'}, tags "
                        f"{', '.join(found['tags']) or '-'}."
                    )
    return shown
