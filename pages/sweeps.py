"""Sweeps on the pages: the form under the Train page (``sweep_form``) and the view at the end
of the Evaluate page (``sweep_view``). Not a page of its own; the work is in
services.sweeps.study."""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import streamlit as st

from pages import charts
from pages.config_form import label
from pages.shared import data_home, engine, jobs, said
from services import catalog
from services.access import read_only
from services.catalog import StorageError
from services.market.tries import sweep_tries
from services.registry import TRAINABLE
from services.reports import run_overview
from services.sweeps.space import SweepError, default_dimension, searchable_fields, suggested_space
from services.sweeps.study import SweepInfo, max_parallel, start_sweep, sweep_info, sweeps

LOSS = "best val loss"


def field_label(path: str) -> str:
    """'training.optimizer.base_learning_rate' -> 'Training · Learning rate'."""
    part, _, field = path.partition(".")
    return f"{part.capitalize()} · {label(field)}"


def _bounds_inputs(path: str, item: object) -> dict:
    """Inputs for one searched field, prefilled with its default range."""
    start = default_dimension(path, item)
    key = f"sweep:{path}"
    if start.choices is not None:
        picked = st.multiselect(
            field_label(path), list(start.choices), default=list(start.choices), key=key
        )
        return {"choices": picked}
    low_cell, high_cell, log_cell = st.columns([2, 2, 1])
    number = "%d" if start.integer else "%g"
    cast = int if start.integer else float
    low = low_cell.number_input(
        f"{field_label(path)}: from", value=cast(start.low), format=number, key=key + "<"
    )
    high = high_cell.number_input("to", value=cast(start.high), format=number, key=key + ">")
    log = log_cell.checkbox("log scale", value=start.log, key=key + "~")
    return {"low": low, "high": high, "log": log}


def sweep_form() -> None:
    """Start a sweep: a market model, a dataset, the settings to search (each field's default
    range offered), trials and how many run at once. Hidden in read-only mode."""
    if read_only():
        return
    with st.expander("New sweep: search settings with Optuna"):
        models = [name for name, spec in TRAINABLE.items() if spec.sweepable]
        stored = {d.name: d for d in catalog.datasets(engine=engine(), recommender=False)}
        left, right = st.columns(2)
        model = left.selectbox("Sweep model", models, key="sweep:model")
        dataset = right.selectbox("Sweep dataset", list(stored), key="sweep:dataset")
        if not dataset:
            st.info("Build a dataset on the Data page first.")
            return
        recipe = stored[dataset].recipe
        fields = searchable_fields(model, recipe)
        chosen = st.multiselect(
            "Settings to search",
            list(fields),
            default=list(suggested_space(model, recipe)),
            format_func=field_label,
            key=f"sweep:dimensions:{model}",
            help="Numeric and choice fields of the model and training configs.",
        )
        with st.form("sweep"):
            space = {path: _bounds_inputs(path, fields[path]) for path in chosen}
            cells = st.columns(3)
            trials = cells[0].number_input("Trials", 1, 1000, value=8, key="sweep:trials")
            parallel = cells[1].number_input(
                "Trials at once", 1, 64, value=max(max_parallel(), 2), key="sweep:parallel"
            )
            epochs = cells[2].number_input("Epochs per trial", 1, 1000, value=20, key="sweep:ep")
            submitted = st.form_submit_button("Start sweep", type="primary")
        st.caption(
            "Trial 0 is the default config; later trials are sampled (TPE) and the median "
            "pruner stops those worse than the trials before them at the same epoch. Trials run "
            f"as jobs, TRENDLAB_MAX_JOBS ({max_parallel()}) at a time on this server or Ray."
        )
    if submitted:
        spec = TRAINABLE[model]
        training = spec.training_config_class.from_dict({"epochs": int(epochs)}, partial=True)
        try:
            sweep_id = start_sweep(
                jobs(),
                model_name=model,
                dataset_name=dataset,
                space=space,
                trials=int(trials),
                parallel=int(parallel),
                training=training,
            )
        except (SweepError, StorageError) as error:
            st.error(said(error))
        else:
            st.success(f"Started sweep {sweep_id}; its trials appear in the jobs table.")


def _trials_table(info: SweepInfo) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "trial": t.number,
                "state": t.state,
                "val loss": t.value,
                "epochs": t.epochs,
                "run": t.run_id,
                **{path.split(".")[-1]: value for path, value in t.params.items()},
            }
            for t in info.results
        ]
    )


@st.cache_data(show_spinner="Judging the trials together...", max_entries=8)
def tries(database_url: str, sweep_id: int, finished: int) -> dict:
    """The sweep's verdict over its tries (recomputed when more trials have finished)."""
    return sweep_tries(engine=engine(), home=data_home(), sweep_id=sweep_id)


def tries_section(info: SweepInfo) -> None:
    """The verdict over the trials: SPA of the best against the best baseline, the highest
    raw Sharpe beside its deflated Sharpe, and the PBO, per horizon."""
    finished = sum(t.state in ("complete", "pruned") and t.run_id is not None for t in info.results)
    if not finished:
        return
    try:
        report = tries(str(engine().url), info.id, finished)
    except (StorageError, ValueError) as error:
        st.info(f"No verdict over the trials yet: {error}")
        return
    st.subheader(f"Verdict over {report['trials']} tries")
    st.markdown(f"**Verdict:** {report['verdict']['sentence']}.")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "horizon": horizon,
                    "best trial": s["best_trial"],
                    f"its {report['primary']['name']}": s["best_trial_skill"],
                    "best baseline": s["best_baseline"],
                    "baseline's": s["best_baseline_skill"],
                    "SPA p-value": s["spa_pvalue"],
                    "highest Sharpe": s.get("sharpe"),
                    "of": s.get("sharpe_trial", "-"),
                    "deflated Sharpe": s.get("deflated_sharpe"),
                    "luck alone": s.get("expected_max_sharpe"),
                    "PBO": s["pbo"]["pbo"] if s.get("pbo") else None,
                }
                for horizon, s in report["horizons"].items()
            ]
        ).style.format(precision=3, na_rep="-"),
        hide_index=True,
    )
    st.caption(
        f"The primary metric is {report['primary']['name']} ({report['primary']['reason']}). "
        "SPA (Hansen): the chance that the best baseline is not beaten by any of the trials, "
        "every trial counted. Highest Sharpe: the trial whose market-neutral portfolio did "
        f"best after {report['cost_bps']:g} bp costs, annualised; luck alone is the Sharpe "
        "ratio the best of this many skill-less trials reaches, and the deflated Sharpe the "
        "probability that the true Sharpe beats it (Bailey and Lopez de Prado). PBO: how often "
        "the trial best on half of the test days lands at or below the median on the other "
        "half (combinatorially symmetric cross-validation)."
    )


def sweep_view() -> None:
    """The sweeps: the best trial, parameter importance, every trial, and the trials' runs in
    the parallel-coordinates and comparison views."""
    found = sweeps(engine=engine())
    if not found:
        return
    st.header("Sweeps")
    labels = {
        sweep_id: f"sweep {sweep_id} · {model} · {status}" for sweep_id, model, status in found
    }
    sweep_id = st.selectbox("Sweep", list(labels), format_func=labels.get, key="sweep:view")
    info = sweep_info(engine=engine(), home=data_home(), sweep_id=sweep_id)
    if info is None:
        return
    states = [t.state for t in info.results]
    best = info.best
    cells = st.columns(4)
    cells[0].metric("Status", info.status)
    cells[1].metric("Trials", f"{len(states)} of {info.trials}")
    cells[2].metric("Pruned", states.count("pruned"))
    cells[3].metric("Best val loss", f"{best.value:.4f}" if best else "-")
    if info.error:
        st.warning(info.error)
    if best is not None:
        st.subheader(f"Best: trial {best.number} (run {best.run_id})")
        st.json(json.dumps(best.params))
    tries_section(info)
    if info.importance:
        frame = pd.DataFrame(
            {"setting": list(info.importance), "importance": list(info.importance.values())}
        )
        charts.show(
            st,
            px.bar(frame, x="setting", y="importance", title="Parameter importance (fANOVA)"),
            key="sweep-importance",
        )
    st.dataframe(_trials_table(info), hide_index=True)
    runs = info.run_ids
    if len(runs) >= 2:
        overview = run_overview(engine=engine(), run_ids=runs)
        losses = {
            r.id: r.summary.get("best_val_loss")
            for r in (catalog.run(engine=engine(), run_id=run_id) for run_id in runs)
            if r is not None
        }
        overview[LOSS] = overview["run"].map(losses).astype(float)
        charts.show(st, charts.parallel_figure(overview, LOSS), key="sweep-parallel")
        query = "&".join(f"run={run_id}" for run_id in runs)
        st.markdown(f"[Compare these trials' runs](/evaluate?{query}) in the comparison view.")
