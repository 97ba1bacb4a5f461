"""Train: pick any model (market or recommender) and a dataset of its kind, set its configs,
start a background job, watch it."""

import json

import pandas as pd
import plotly.express as px
import streamlit as st

from core.config import ConfigError, flat_fields, from_flat, parse_yaml
from core.devices import available_devices
from core.trainables import Trainable
from pages import charts
from pages.access import read_only, refused
from pages.config_form import apply_preset, config_form, settings_values
from pages.shared import engine, jobs, said
from pages.sweeps import sweep_form
from services import catalog
from services.catalog import JobStatus, StorageError
from services.estimates import Estimate
from services.jobs.kinds import dataset_fixed_fields
from services.jobs.progress import format_duration, job_progress
from services.registry import TRAINABLE, estimate_training
from services.reports import epoch_curves, flat_accuracy_notes
from services.runs import checkpoint_problems
from services.runs_table import KINDS

st.title("Train")

left, right = st.columns(2)
model = left.selectbox(
    "Model", list(TRAINABLE), format_func=lambda name: f"{name}: {TRAINABLE[name].description}"
)
spec = TRAINABLE[model]
stored = {d.name: d for d in spec.datasets(engine())}
dataset = right.selectbox("Dataset", list(stored), placeholder=spec.no_dataset)
fixed = dataset_fixed_fields(model, stored[dataset].recipe) if dataset else {}


@st.cache_data(show_spinner=False, max_entries=32)
def coverage_sentences(dataset: str, created: object, model: str) -> list[str]:
    """How many rows carry the model's targets (both kinds for the dual tower, whose target
    is a choice); ``created`` keys the cache to this build of the dataset."""
    spec = TRAINABLE[model]
    targets = ["relevance", "trend"] if "target" in flat_paths(spec.config_class) else [None]
    sentences = []
    for target in targets:
        config = spec.config_class.from_dict({"target": target} if target else {}, partial=True)
        try:
            sentences.append(spec.coverage(engine(), dataset, config))
        except StorageError as error:
            return [str(error)]
    return sentences


def flat_paths(config_class: type) -> set[str]:
    return {field.path for field in flat_fields(config_class)}


@st.cache_data(show_spinner="Measuring a few training steps on this machine...", max_entries=32)
def measured_estimate(
    model: str, dataset: str, created: object, model_json: str, training_json: str
) -> Estimate:
    """The measured calibration for these configs; the epochs field only scales it
    (``Estimate.for_training``), so changing it measures nothing again."""
    chosen = TRAINABLE[model]
    return estimate_training(
        engine=engine(),
        model_name=model,
        dataset_name=dataset,
        model_config=chosen.config_class.from_dict(json.loads(model_json)),
        training=chosen.training_config_class.from_dict(json.loads(training_json)),
    )


def upload_settings(model: str, widget: str) -> None:
    """The YAML uploader's callback: a file of training settings fills the form, like a preset.
    Callbacks run before the page draws the form, the one moment its widgets' state may be
    written; a problem is kept for the page to show under the uploader."""
    problem = f"{widget}:problem"
    st.session_state.pop(problem, None)
    upload = st.session_state.get(widget)
    if upload is None:
        return
    spec = TRAINABLE[model]
    try:
        parsed = parse_yaml(upload.getvalue().decode("utf-8"), upload.name)
        if not isinstance(parsed, dict):
            raise ConfigError("file", upload.name, "a YAML mapping of config fields")
        values = settings_values(spec.training_config_class, parsed)
    except UnicodeDecodeError:
        st.session_state[problem] = f"{upload.name} is not UTF-8 text."
    except ConfigError as error:
        st.session_state[problem] = str(error.within(source=upload.name))
    else:
        apply_preset(
            form_classes(spec), model, {f"training.{path}": v for path, v in values.items()}
        )


def form_classes(spec: Trainable) -> dict[str, type]:
    """The configs the form edits, by part."""
    return {"model": spec.config_class, "training": spec.training_config_class}


if not refused("starting training jobs and uploading configs"):
    setup = st.expander("New training run", expanded=not st.session_state.get("submitted_once"))
    with setup:
        if dataset and spec.coverage:
            st.caption(
                "Rows this model can learn from: "
                + "; ".join(coverage_sentences(dataset, stored[dataset].created_at, model))
                + "."
            )
        st.radio(
            "Preset",
            list(spec.presets),
            index=None,
            horizontal=True,
            key=f"preset:{model}",
            on_change=lambda: apply_preset(
                form_classes(spec), model, spec.presets[st.session_state[f"preset:{model}"]]
            ),
            help="Quick: a first look in a minute or two. Standard: the design seeds' model "
            "with a bounded budget. Thorough: room to converge. Each sets epochs, patience, "
            "batch size and, for quick, a smaller model; change anything afterwards.",
        )
        values = config_form(
            form_classes(spec),
            model,
            spec.presets,
            fixed,
        )
        seeds = st.number_input(
            "Runs (seeds)",
            min_value=1,
            max_value=10,
            value=1,
            help="One run per seed (seed, seed + 1, ...) as one experiment; Evaluate shows "
            "their mean and spread.",
        )
        device = st.selectbox(
            "Device",
            available_devices(),
            help="Where the job trains. Auto: a CUDA GPU when this machine has one, else the CPU.",
        )
        uploader = f"settings-upload:{model}"
        st.file_uploader(
            "Or start from a YAML file of training settings",
            type=["yaml", "yml"],
            key=uploader,
            on_change=upload_settings,
            args=(model, uploader),
        )
        if problem := st.session_state.get(f"{uploader}:problem"):
            st.error(problem)
        try:
            model_config = from_flat(spec.config_class, values["model"])
            training = from_flat(spec.training_config_class, values["training"])
        except ConfigError as error:
            st.error(said(error))
            model_config = training = None
        if model_config is not None and dataset:
            estimate = measured_estimate(
                model,
                dataset,
                stored[dataset].created_at,
                json.dumps(model_config.to_dict(), sort_keys=True),
                json.dumps({**training.to_dict(), "epochs": 1}, sort_keys=True),
            ).for_training(training)
            runs = f" per run, {int(seeds)} runs" if seeds > 1 else ""
            st.markdown(
                f"**Estimated time: {estimate.sentence()}**{runs}.",
                help=f"Measured here just now: {estimate.measured}.",
            )
            if estimate.sizing:
                st.caption(f"{estimate.sizing}.")
        start = st.button(
            "Start training", type="primary", disabled=not dataset or model_config is None
        )

    if start:
        try:
            job_id = jobs().submit_training(
                model_name=model,
                dataset_name=dataset,
                training=training,
                model_config=model_config,
                seeds=int(seeds),
                device=device,
            )
        except StorageError as error:
            st.error(said(error))
        else:
            st.session_state["submitted_once"] = True
            st.success(
                f"Queued job {job_id}."
                if seeds == 1
                else f"Queued jobs {job_id} to {job_id + int(seeds) - 1}: one experiment."
            )
            st.download_button(
                "Download these training settings (YAML)",
                training.to_yaml(),
                file_name=f"{model}_training.yaml",
                on_click="ignore",  # a rerun would drop the button, and its file, at once
            )


@st.fragment(run_every=2)
def live() -> None:
    """Refreshes every 2 seconds: the jobs table and the newest job's curves. The charts keep
    a fixed ``uirevision`` so a user's zoom survives the refresh."""
    problems = checkpoint_problems(engine=engine())
    all_jobs = catalog.jobs(engine=engine())
    if not all_jobs:
        st.info("No jobs yet.")
        return
    current = next((j for j in all_jobs if j.running), all_jobs[0])
    runs = {r.id: r for r in catalog.runs(engine=engine())}
    table = pd.DataFrame(
        [
            {
                "job": j.id,
                "kind": KINDS.get(j.kind, j.kind),
                "run": j.run_id,
                "model": runs[j.run_id].model if j.run_id in runs else "",
                "dataset": (runs[j.run_id].dataset or "") if j.run_id in runs else "",
                "status": j.status,
                "device": j.request.get("device", ""),
                "progress": (job_progress(j.progress) or (0, ""))[1] if j.running else "",
                "duration": format_duration(j.duration_s) if j.duration_s else "",
                "evaluate": f"/evaluate?run={j.run_id}" if j.status == JobStatus.SUCCEEDED else "",
                "checkpoint": problems.get(j.run_id, ""),
                "error": (j.error or "").splitlines()[0] if j.error else "",
            }
            for j in all_jobs
        ]
    )
    metrics = epoch_curves(engine=engine(), run_ids=[current.run_id])
    st.subheader(f"Job {current.id} (run {current.run_id}): {current.status}")
    progress = current.progress
    shown = job_progress(progress) if current.status == JobStatus.RUNNING else None
    if shown:
        st.progress(shown[0], text=shown[1])
        if not read_only() and st.button("Cancel this job", key=f"cancel-{current.id}"):
            jobs().cancel(current.id)
    resumable = current.status == JobStatus.INTERRUPTED and not read_only()
    if resumable and st.button("Resume from last checkpoint"):
        st.success(f"Queued job {jobs().resume(current.id)}.")
    if current.status == JobStatus.SUCCEEDED and current.run_id:
        st.markdown(f"Finished: [evaluate run {current.run_id}](/evaluate?run={current.run_id})")
    for note in flat_accuracy_notes(metrics):
        st.caption(note)
    if not metrics.empty:
        losses = metrics[metrics["split"].isin(["train", "val"])]
        charts.show(
            st,
            charts.curves_figure(
                losses, title=f"Run {current.run_id}: training and validation per epoch"
            ).update_layout(uirevision=f"losses-{current.run_id}"),
            key="losses",
            alt=f"Chart: run {current.run_id}'s loss components and validation figures per "
            "epoch, one panel each; training in blue, validation in orange.",
        )
        rate = metrics[metrics["name"] == "lr"]
        charts.show(
            st,
            px.line(
                rate,
                x="epoch",
                y="value",
                title="Learning rate per epoch",
                labels={"value": "learning rate", "epoch": "epoch"},
                height=250,
            ).update_layout(uirevision=f"lr-{current.run_id}"),
            key="lr",
        )
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "evaluate": st.column_config.LinkColumn(display_text=r"/evaluate\?run=(\d+)")
        },
    )


live()


sweep_form()
