"""Evaluate's walk-forward section: a run's evaluation fold by fold, the progress of one
that is running, or the button that starts one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.access import read_only
from pages.shared import engine, jobs, said
from services import catalog
from services.catalog import StorageError
from services.jobs.progress import job_progress
from services.market.evaluation import load_walk_forward
from services.reports import evaluation_summary


def walk_forward_section(run_id: int) -> None:
    """The run's walk-forward evaluation fold by fold, or the button that starts one (a
    background job: each fold retrains with the run's configs)."""
    st.subheader("Walk-forward evaluation")
    result = load_walk_forward(engine=engine(), run_id=run_id)
    pending = [
        j
        for j in catalog.jobs(engine=engine(), kind="walk_forward")
        if j.run_id == run_id and not j.finished
    ]
    if result:
        folds = pd.DataFrame(
            [
                {
                    "fold": index + 1,
                    "test from": fold["test_start"],
                    "test to": fold["test_end"],
                    "test rows": fold["test_rows"],
                    "predictor": name,
                    **{
                        f"{h} {label}": section[key][figure]
                        for h, section in sections.items()
                        for label, key, figure in (
                            ("corr", "regression", "pearson"),
                            ("rank IC", "finance", "rank_ic"),
                        )
                    },
                }
                for index, fold in enumerate(result["folds"])
                for name, sections in fold["reports"].items()
            ]
        )
        st.caption(
            f"{len(result['folds'])} expanding windows: each fold retrains on every date "
            "before its test block (a purge apart) and scores the block."
        )
        st.dataframe(folds.style.format(precision=3), hide_index=True)
        joined = result.get("joined")
        if joined:
            st.markdown(
                f"**The folds' out-of-sample predictions joined** ({joined['test_rows']:,} rows, "
                f"{joined['test_start']} to {joined['test_end']}), judged once:"
            )
            st.info("\n\n".join(evaluation_summary(joined, None)[1:]))
    if pending:
        job = pending[0]
        shown = job_progress(job.progress)
        if shown:
            st.progress(shown[0], text=f"Walk-forward job {job.id}: {shown[1]}")
        else:
            st.info(
                f"Walk-forward job {job.id}: {job.status}; the first fold's progress appears "
                "once its worker has loaded the run's data."
            )
    elif not read_only():
        folds = st.number_input("Folds", 2, 10, 3, key=f"folds-{run_id}")
        if st.button("Run a walk-forward evaluation in the background", key=f"wf-{run_id}"):
            try:
                st.success(f"Queued job {jobs().submit_walk_forward(run_id=run_id, folds=folds)}.")
            except StorageError as error:
                st.error(said(error))
