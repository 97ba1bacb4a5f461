"""Evaluate: one run beside the baselines, or several runs side by side."""

import re

import pandas as pd
import plotly.express as px
import streamlit as st

from core.exports import spreadsheet_csv
from core.market.attention import attention_spread
from core.market.evaluation import (
    BASELINES,
    SEED_LEVELS,
    Evaluation,
    finance_rows,
    metrics_table,
    seed_level,
)
from core.market.metrics import daily_information_coefficients
from core.market.models import model_spec
from pages import charts
from pages.following import live_section
from pages.run_table import show_runs
from pages.shared import engine, said
from pages.sweeps import sweep_view
from pages.trading import trading_section
from pages.walk_forward import walk_forward_section
from services import catalog
from services.catalog import JobStatus, StorageError
from services.market.evaluation import evaluate_ensemble, load_evaluation
from services.market.runs import experiment_spread
from services.market.tables import readable_metrics
from services.market.tries import compare_runs, comparison_lines
from services.registry import models_on
from services.reports import epoch_curves, evaluation_summary, run_overview, settings_diff
from services.runs import checkpoint_problems
from services.runs_table import runs_table

st.title("Evaluate")
st.caption(
    "Test-set results of finished runs beside the baselines (and, on synthetic data, the "
    "oracle), computed on the same rows when training ended."
)


@st.cache_resource(show_spinner="Evaluating the run beside the baselines...", max_entries=16)
def evaluation(database_url: str, run_id: int) -> Evaluation:
    """A finished run's evaluation never changes, so one copy per run serves every session."""
    return load_evaluation(engine=engine(), run_id=run_id)


@st.cache_data(show_spinner="Comparing the runs day by day...", max_entries=16)
def comparison_report(database_url: str, run_ids: tuple[int, ...]) -> dict:
    """The model confidence set and Diebold-Mariano test of the runs (finished runs' test
    predictions never change)."""
    return compare_runs(engine=engine(), run_ids=list(run_ids))


@st.cache_data(show_spinner="Judging the mean of the experiment's models...", max_entries=16)
def experiment_mean(
    database_url: str, run_ids: tuple[int, ...], baselines: tuple[str, ...]
) -> dict:
    """The mean of an experiment's models judged as one against the baselines its runs were
    trained with (finished runs never change)."""
    return evaluate_ensemble(engine=engine(), run_ids=list(run_ids), baselines=baselines)


MARKET_MODELS = models_on("evaluate")  # recommenders are judged on the Recommend page
finished = [
    r
    for r in catalog.runs(engine=engine())
    if r.model in MARKET_MODELS
    and r.status in (JobStatus.SUCCEEDED, JobStatus.CANCELLED)
    and r.summary.get("best_epoch", -1) > 0  # it kept a best checkpoint
]
if not finished:
    st.info("No finished runs yet. Train a model on the Train page.")
    st.stop()

with st.expander("All runs: filter, sort, name and tag", expanded=True):
    show_runs(runs_table(engine=engine()), key="evaluate-runs")
problems = checkpoint_problems(engine=engine())
labels = {
    r.id: f"run {r.id} · {r.model}"
    + (" · collapsed" if r.summary.get("collapsed") else "")
    + (" · checkpoint problem" if r.id in problems else "")
    for r in finished
}
# ?run=3&run=5 (the Train page links here) preselects runs
linked = [int(v) for v in st.query_params.get_all("run") if v.isdigit() and int(v) in labels]
chosen = st.multiselect(
    "Runs (pick several to compare)",
    list(labels),
    default=linked or [finished[0].id],
    format_func=labels.get,
)
for run_id in chosen:
    if run_id in problems:
        st.warning(f"Run {run_id}: {problems[run_id]}. Its results cannot be recomputed.")
if not chosen:
    st.stop()


details, comparison = st.tabs(["Details", "Comparison"])

with details:
    run_id = st.selectbox("Run", chosen, format_func=labels.get) if len(chosen) > 1 else chosen[0]
    try:
        result = evaluation(str(engine().url), run_id)
    except (StorageError, ValueError) as error:
        st.error(said(error))
        st.stop()
    spec = model_spec(result.report["model"], targets=result.report.get("targets"))
    run = catalog.run(engine=engine(), run_id=run_id)
    summary = evaluation_summary(result.report, run)
    collapsed = result.report.get("uncertainty", {}).get("collapse", {}).get("collapsed")
    (st.warning if collapsed else st.info)("\n\n".join(summary))
    experiment = run.config.get("experiment") if run else None
    if experiment:
        members = [
            r
            for r in catalog.runs(engine=engine())
            if r.config.get("experiment") == experiment and r.summary.get("test")
        ]
        st.markdown(
            f"**Experiment {experiment}**: runs {', '.join(str(r.id) for r in members)} "
            f"(seeds {', '.join(str(r.seed) for r in members)}), the same settings otherwise. "
            "Test figures over its seeds (mean ± sd, and the 95% interval of the mean):"
        )
        spread = experiment_spread([r.summary for r in members])
        st.dataframe(
            pd.DataFrame(
                [
                    {"horizon": h, "figure": name, **figures}
                    for h, by_name in spread.items()
                    for name, figures in by_name.items()
                ]
            ).style.format({k: "{:.3f}" for k in ("mean", "std", "low", "high")}, na_rep="-"),
            hide_index=True,
        )
        if len(members) > 1:
            try:
                mean = experiment_mean(
                    str(engine().url),
                    tuple(sorted(r.id for r in members)),
                    tuple(run.config.get("baselines", BASELINES)),
                )
            except (StorageError, ValueError) as error:
                st.error(f"The mean of the experiment's models cannot be judged: {error}")
            else:
                verdict = mean["uncertainty"]["verdict"]
                (st.warning if verdict["verdict"] == "collapsed" else st.info)(
                    f"**The experiment's verdict** (the mean of its {len(members)} models "
                    f"judged as one on {mean['rows']:,} test rows): {verdict['sentence']}."
                )
    horizon = st.radio("Horizon", [f"{h}d" for h in result.horizons], horizontal=True)
    h = int(horizon.removesuffix("d"))
    reports = result.report["reports"]
    st.subheader(f"Run {run_id}: {spec.name}, {result.report['test_rows']:,} test rows")

    judged = result.report.get("uncertainty")
    table = metrics_table(reports, horizon, judged)
    readable, headline = readable_metrics(table, (judged or {}).get("primary", {}).get("metric"))
    pinned = {"predictor": st.column_config.TextColumn("predictor", pinned=True)}
    st.dataframe(readable[headline], hide_index=True, column_config=pinned)
    with st.expander(f"Every figure ({len(readable.columns) - 1} columns)"):
        st.dataframe(readable, hide_index=True, column_config=pinned)
    if judged:
        section = judged["horizons"][horizon]
        ordered = sorted(section["comparisons"], key=lambda c: c.get("role") != "primary")
        st.markdown(
            f"**Against the best baseline at {horizon}** (95% intervals from a block bootstrap "
            f"over test dates, blocks of {section['block_dates']} dates; the verdict rests on "
            "the primary line alone):\n"
            + "\n".join(f"- {c.get('role', 'secondary')}: {c['sentence']}" for c in ordered)
        )
        ic = section["rank_ic"]["model"]
        st.caption(
            f"Rank IC {ic['ic_mean']:+.3f} over {ic['ic_days']} dates: Newey-West t "
            f"{ic['ic_t_nw']:+.2f} (p {ic['ic_p_nw']:.3f}), ICIR {ic['icir']:+.3f}."
        )
    st.caption(
        "Each figure with its 95% interval in brackets where one was computed; the primary "
        "metric first. Shares in percent."
    )
    if table["corr vs label noise"].notna().any():
        st.caption(
            "*corr vs label noise* is a leak check: the correlation with the part of the label "
            "that no past feature can foresee (label minus its fit on the oracle). A predictor "
            "that never saw test labels lands near 0."
        )
    level = seed_level(reports["model"][horizon])
    bands = pd.DataFrame(
        [
            {"level": name, "MSE below": mse, "corr above": corr, "direction acc above": acc}
            for name, (mse, corr, acc) in SEED_LEVELS.items()
        ]
    )
    with st.expander(f"Quality bands (MSE, correlation, direction): this model is **{level}**"):
        st.caption(
            "Measured against the oracle where the data has one (synthetic), otherwise against "
            "the realised labels. The bands are the project's first specification's (seed 000) "
            "for relevance scores: a rough scale, not a verdict (the verdict above is)."
        )
        st.dataframe(bands, hide_index=True)

    names = [f"{h}d" for h in result.horizons]
    for column, name in zip(st.columns(len(names)), names, strict=True):
        charts.show(
            column,
            charts.confusion_figure(
                reports["model"][name]["classification"]["confusion"],
                spec.target.class_names,
                f"Confusion matrix, {name}",
            ),
            key=f"confusion-{name}",
        )

    rows = result.predictions
    score_column, class_column = spec.target.columns(h)
    left, right = st.columns(2)
    charts.show(
        left,
        charts.scatter_figure(
            rows.assign(predicted=rows[f"score_{h}d"], actual=rows[score_column]),
            x="actual",
            y="predicted",
            color="ticker",
            title=f"Predicted against actual {score_column}",
        ),
        key="scatter",
    )
    daily = daily_information_coefficients(finance_rows(rows[f"score_{h}d"], rows, h))
    charts.show(right, charts.ic_figure(daily), key="ic")

    use = result.report.get("uncertainty", {}).get("primary", {}).get("use")
    if use and not use["strategies"]:
        st.caption(
            f"**What it is for:** {use['sentence']} No trading table is shown: a co-movement "
            "forecast says how a stock will move with the context, not which stock will rise."
        )
    else:
        trading_section(result, rows, h, horizon, use)

    attention = rows.filter(regex=r"^attention_\d+$")
    if not attention.empty:
        latest = rows.sort_values("date").tail(150).index
        heatmap, mean = charts.attention_figures(
            attention.loc[latest],
            [
                f"{d:%Y-%m-%d} {t}"
                for d, t in zip(rows.loc[latest, "date"], rows.loc[latest, "ticker"], strict=True)
            ],
        )
        spread = attention_spread(attention.to_numpy())
        (st.warning if spread.is_uniform else st.caption)(spread.sentence())
        left, right = st.columns([2, 1])
        charts.show(left, heatmap, key="attention")
        charts.show(right, mean, key="attention-mean")

    if "group_importance" in result.report:
        left, right = st.columns(2)
        charts.show(
            left, charts.importance_figure(result.report["group_importance"]), key="importance"
        )
        if "context_pc1" in rows.columns:
            tower = right.radio("Tower", ["context", "stock"], horizontal=True)
            coloured = rows.assign(
                label=pd.Categorical.from_codes(
                    rows[class_column].astype(int), spec.target.class_names
                )
            )
            charts.show(right, charts.embedding_figure(coloured, tower, "label"), key="embedding")
    gates = result.report.get("input_gates")
    if gates and charts.gates_alike(gates):
        st.caption(charts.gates_alike(gates))
    elif gates:
        charts.show(st, charts.gates_figure(gates), key="gates")

    walk_forward_section(run_id)
    live_section(run_id)

    st.download_button(
        "Download the test predictions (CSV)",
        spreadsheet_csv(rows),
        file_name=f"run_{run_id}_test_predictions.csv",
        mime="text/csv",
    )

targets = {r.id: r.target for r in sorted(finished, key=lambda r: r.id) if r.id in chosen}
with comparison:
    if len(chosen) < 2:
        st.info("Pick two or more runs above to compare them.")
    else:
        mixed = len(set(targets.values())) > 1
        if mixed:
            st.warning(
                "**Different targets, not comparable:** "
                + ", ".join(
                    f"run {r} predicts {t or 'an unknown target'}" for r, t in targets.items()
                )
                + ". Their losses and correlations measure different things; each is shown "
                "beside its own target, and the day-by-day comparison is left out."
            )
        curves = epoch_curves(engine=engine(), run_ids=chosen)
        validation = curves[curves["split"] == "val"]
        names = sorted(validation["name"].unique())
        name = st.selectbox(
            "Validation curve", names, index=names.index("total") if "total" in names else 0
        )
        charts.show(
            st,
            px.line(
                validation[validation["name"] == name].assign(run=lambda f: f["run"].astype(str)),
                x="epoch",
                y="value",
                color="run",
                title=f"Validation {name} per epoch",
                height=360,
            ).update_xaxes(tickformat="d", dtick=1 if validation["epoch"].max() <= 20 else None),
            key="compare-curves",
        )
        overview = run_overview(engine=engine(), run_ids=chosen)
        metrics = [
            c
            for c in overview.columns
            if re.fullmatch(r"[0-9]+d \w+", str(c)) and not c.endswith(("_low", "_high"))
        ]
        preferred = [m for m in metrics if m.endswith(" pearson")]
        metric = st.selectbox(
            "Metric", metrics, index=metrics.index(preferred[0]) if preferred else 0
        )
        left, right = st.columns(2)
        bounds = [f"{metric}_low", f"{metric}_high"]
        ranged = set(bounds) <= set(overview.columns)
        shown = overview.assign(
            run=overview["run"].astype(str), target=overview["run"].map(targets).fillna("")
        )
        if ranged:  # error bars from each run's 95 % interval
            shown = shown.assign(
                above=shown[bounds[1]] - shown[metric], below=shown[metric] - shown[bounds[0]]
            )
        charts.show(
            left,
            px.bar(
                shown,
                x="run",
                y=metric,
                color="target" if mixed else "model",
                error_y="above" if ranged else None,
                error_y_minus="below" if ranged else None,
                title=("Not comparable across targets: " if mixed else "")
                + f"Test {metric}"
                + (" with 95% intervals" if ranged else ""),
                height=420,
            ).update_xaxes(type="category"),
            key="compare-bars",
        )
        charts.show(right, charts.parallel_figure(overview, metric), key="parallel")
        try:
            if mixed:
                raise ValueError("the runs predict different targets")
            compared = comparison_report(str(engine().url), tuple(chosen))
        except (StorageError, ValueError) as error:
            st.info(f"No day-by-day comparison: {error}")
        else:
            st.markdown(
                "**Which runs are best, day by day** (model confidence set of Hansen, Lunde "
                "and Nason; Diebold-Mariano with a Newey-West variance):\n"
                + "\n".join(f"- {line}" for line in comparison_lines(compared))
            )
        differ = settings_diff(overview)
        st.markdown(f"**Settings that differ** ({len(differ)} of the runs' settings):")
        st.dataframe(differ, hide_index=True)
        with st.expander("Every figure and setting of these runs"):
            st.dataframe(overview, hide_index=True)


sweep_view()
