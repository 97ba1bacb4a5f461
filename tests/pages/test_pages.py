"""Every page renders with AppTest on an empty and on a filled database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import torch
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from storage import DataHome
from storage.models import JobStatus
from storage.repository import (
    MetricRow,
    append_metrics,
    create_job,
    create_run,
    session_scope,
    set_run_status,
)

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = [
    "pages/data.py",
    "pages/train.py",
    "pages/evaluate.py",
    "pages/predict.py",
    "pages/recommend.py",
]


def _fill(engine: Engine) -> None:
    """A real (small) dataset 'demo' with one finished run on it, its metric and its job."""
    from core.market.config import DataConfig
    from core.market.sources import synthetic_data
    from services.datasets import save_market_dataset

    data = synthetic_data(
        ["AAPL", "MSFT"], "2018-01-01", "2020-06-30", seed=1, signal=True, horizons=[7, 30]
    )
    dataset, _ = save_market_dataset(
        engine=engine, name="demo", data=data, config=DataConfig(), description="generator"
    )
    with session_scope(engine) as session:
        run = create_run(
            session=session, model_kind="dual_tower", config={}, seed=1, dataset_id=dataset.id
        )
        set_run_status(
            session=session,
            run_id=run.id,
            status=JobStatus.SUCCEEDED,
            summary_metrics={"val_loss": 0.5},
        )
        append_metrics(session=session, run_id=run.id, rows=[MetricRow(0, "val", "loss", 0.5)])
        create_job(session=session, kind="train", run_id=run.id)


def _run(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_home_page_on_an_empty_database(data_home: DataHome) -> None:
    at = _run()
    assert [m.value for m in at.metric] == ["0", "0", "0"]
    assert any("No runs yet" in info.value for info in at.info)
    assert any(str(data_home.root) in md.value for md in at.markdown)


def test_home_page_counts_what_storage_holds(engine: Engine) -> None:
    _fill(engine)
    at = _run()
    assert {m.label: m.value for m in at.metric} == {"Datasets": "1", "Runs": "1", "Jobs": "1"}
    runs = at.dataframe[0].value
    assert list(runs["model"]) == ["dual_tower"] and list(runs["dataset"]) == ["demo"]
    assert list(runs["status"]) == ["succeeded"] and list(runs["kind"]) == ["training"]
    assert runs.notna().all().all(), "issue 39: no None in the table"


def test_home_page_explains_a_corrupt_database(data_home: DataHome) -> None:
    data_home.database_path.write_bytes(b"not a database")
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    assert any("not a DuckDB database" in err.value for err in at.error)
    assert data_home.database_path.read_bytes() == b"not a database"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_an_empty_database(data_home: DataHome, page: str) -> None:
    at = _run(page)
    assert at.title[0].value
    assert at.info, "an empty database shows an empty state"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_a_filled_database(engine: Engine, page: str) -> None:
    _fill(engine)
    at = _run(page)
    assert at.title[0].value


def test_data_page_lists_datasets_with_their_recipe(engine: Engine) -> None:
    _fill(engine)
    at = _run("pages/data.py")
    table = at.dataframe[0].value
    assert list(table["name"]) == ["demo"]
    from services import catalog

    stored = catalog.dataset(engine=engine, name="demo")
    assert list(table["rows"]) == [stored.row_count] and stored.row_count > 500
    assert '"seed": 1' in at.json[0].value and '"source": "synthetic"' in at.json[0].value


@pytest.mark.usefixtures("fixed_estimate")
def test_train_form_queues_a_job_that_the_table_shows(engine: Engine) -> None:
    _fill(engine)
    at = _run("pages/train.py")
    model = next(s for s in at.selectbox if s.label == "Model")
    model.set_value("compact_dual_tower").run()
    at.number_input(key="training:compact_dual_tower:epochs").set_value(10)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    assert any("Queued job 2" in s.value for s in at.success)
    table = at.dataframe[-1].value
    assert list(table["status"])[:1] == ["queued"] and list(table["job"])[:1] == [2]
    first = table.iloc[0]  # issue 39: what the job trains, on what, and how
    assert (first["model"], first["dataset"], first["kind"]) == (
        "compact_dual_tower",
        "demo",
        "training",
    )
    assert table.notna().all().all(), "no None in the jobs table"
    with session_scope(engine) as session:
        from storage.repository import get_job, get_run

        queued = get_job(session=session, job_id=2)
        assert queued.status == "queued"
        assert get_run(session=session, run_id=queued.run_id).config["training"]["epochs"] == 10


@pytest.mark.usefixtures("fixed_estimate")
def test_the_train_form_shows_what_the_dataset_fixes_as_read_only(engine: Engine) -> None:
    """Issue 18: input widths and horizons come from the dataset: shown, never editable;
    everything else keeps a plain label and its field name in the help."""
    from pages.config_form import label

    _fill(engine)
    at = _run("pages/train.py")
    for model in ("dual_tower", "compact_dual_tower", "lstm_attention", "simple_lstm"):
        next(s for s in at.selectbox if s.label == "Model").set_value(model).run()
        assert not at.exception, at.exception
        widgets = [*at.number_input, *at.text_input, *at.selectbox, *at.checkbox]
        locked = {w.label: w for w in widgets if w.disabled}
        fixed = {"horizons"} | (
            {"context_dim", "stock_dim"}
            if model == "compact_dual_tower"
            else {"input_dim"}
            if "lstm" in model
            else {"context_tower.news_dim", "stock_tower.input_dim"}
        )
        assert {label(path) for path in fixed} <= set(locked), (model, sorted(locked))
        assert locked["Horizons (days)"].value == "[7, 30]"
        editable = [w for w in widgets if not w.disabled]
        dotted = [w.label for w in widgets if "." in w.label.split(" ")[0]]
        assert not dotted, dotted
        assert any(w.label.endswith("Dropout (share of units)") for w in editable), model
        fields = [w for w in widgets if str(w.key).split(":")[0] in ("model", "training")]
        named = [w for w in fields if not str(w.key).split(":")[-1].isdigit()]  # not layer i
        assert named and all("`" in (w.help or "") for w in named), "the field name in help"


def test_a_preset_sets_epochs_and_size_and_the_estimate_shows_before_the_job(
    engine: Engine,
) -> None:
    """Issue 18: choosing a preset changes epochs and model size; a measured estimate of the
    run's time is shown before anything starts."""
    _fill(engine)
    at = _run("pages/train.py")
    epochs = at.number_input(key="training:dual_tower:epochs")
    assert epochs.value == 100, "the seeds' default before a preset"
    at.radio(key="preset:dual_tower").set_value("quick").run()
    assert not at.exception, at.exception
    assert at.number_input(key="training:dual_tower:epochs").value == 8
    layers = [
        at.number_input(key=f"model:dual_tower:stock_tower.hidden_dims:{i}").value
        for i in range(at.number_input(key="model:dual_tower:stock_tower.hidden_dims:n").value)
    ]
    assert layers == [64, 32, 16], "the quick preset's smaller stock tower, a number per layer"
    estimate = next(m for m in at.markdown if "Estimated time" in m.value)
    assert "at most 8 epochs" in estimate.value and "about" in estimate.value
    assert "evaluation" in estimate.value, "the evaluation at the end is counted"
    assert "training steps" in estimate.help, "what was measured"
    assert catalog_jobs(engine) == 1, "nothing started: the estimate comes first"
    at.radio(key="preset:dual_tower").set_value("thorough").run()
    assert at.number_input(key="training:dual_tower:epochs").value == 150
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert "at most 150 epochs" in next(m for m in at.markdown if "Estimated" in m.value).value


def catalog_jobs(engine: Engine) -> int:
    from services import catalog

    return len(catalog.jobs(engine=engine))


@pytest.mark.usefixtures("fixed_estimate")
def test_the_train_page_starts_a_recommender_job(engine: Engine) -> None:
    """One Train page for every registered model: the recommender lists recommender datasets
    and queues a train_recommender job."""
    from core.recsys.synthetic import RecsysSpec, generate_recsys
    from storage.recsys import save_recsys_dataset

    data = generate_recsys(RecsysSpec(users=30, items=20, interactions=300, seed=1))
    save_recsys_dataset(engine=engine, name="startups", data=data, description="test")
    _fill(engine)
    at = _run("pages/train.py")
    next(s for s in at.selectbox if s.label == "Model").set_value("two_tower").run()
    dataset = next(s for s in at.selectbox if s.label == "Dataset")
    assert dataset.options == ["startups"], "only recommender datasets"
    at.number_input(key="training:two_tower:epochs").set_value(2)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    assert any("Queued job" in s.value for s in at.success)
    from services import catalog

    newest = catalog.jobs(engine=engine)[0]
    assert newest.kind == "train_recommender"
    run = catalog.run(engine=engine, run_id=newest.run_id)
    assert (run.model, run.dataset, run.config["training"]["epochs"]) == (
        "two_tower",
        "startups",
        2,
    )


def test_data_page_builds_a_synthetic_dataset_and_explores_it(data_home: DataHome) -> None:
    at = _run("pages/data.py")
    form_inputs = {t.label: t for t in at.text_input}
    form_inputs["Tickers (comma-separated)"].set_value("AAA,BBB")
    at.date_input[0].set_value(dt.date(2018, 1, 1))
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("Stored 'synthetic'" in s.value for s in at.success)
    assert at.selectbox[0].value == "synthetic"
    assert [t.label for t in at.tabs] == ["Rows", "Prices", "Feature coverage", "Labels"]
    candles = at.get("plotly_chart")[0]
    assert '"type":"candlestick"' in candles.proto.spec.replace(" ", "")


def test_data_page_bad_upload_shows_the_problem_and_stores_nothing(data_home: DataHome) -> None:
    from storage import open_engine
    from storage.repository import count_rows

    at = _run("pages/data.py")
    at.radio[0].set_value("Upload files").run()
    bad = b"date,ticker,open,high,low,close,volume\n2020-01-02,AAA,1,2,1,x,10\n"
    at.file_uploader[0].upload("prices.csv", bad, "text/csv")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("nothing was stored" in e.value for e in at.error)
    problems = at.dataframe[0].value
    assert list(problems.columns) == ["file", "line / row", "column", "problem"]
    row = problems[problems["column"] == "close"].iloc[0]
    assert (row["file"], row["line / row"]) == ("prices.csv", 2)
    assert list(data_home.uploads.iterdir()) == [], "the staged upload is removed"
    engine = open_engine(data_home.database_url)
    with session_scope(engine) as session:
        assert count_rows(session=session)["datasets"] == 0
    engine.dispose()


def test_charts_read_like_a_report() -> None:
    """Issue 18: panel titles in words, train and validation in the same colours everywhere,
    a title and a text alternative on every chart."""
    import pandas as pd

    from pages import charts

    assert charts.metric_title("mse_7d") == "7-day MSE"
    assert charts.metric_title("ce_30d") == "30-day cross-entropy"
    assert charts.metric_title("orthogonality") == "orthogonality penalty"
    assert charts.metric_title("ndcg@10") == "NDCG@10"
    curves = pd.DataFrame(
        {
            "epoch": [1, 1, 2, 2],
            "split": ["train", "val", "train", "val"],
            "name": ["mse_7d"] * 4,
            "value": [1.0, 1.2, 0.8, 1.1],
        }
    )
    figure = charts.curves_figure(curves, title="Run 1")
    assert [a.text for a in figure.layout.annotations] == ["7-day MSE"], "no 'name=' prefix"
    assert {t.name: t.line.color for t in figure.data} == {"train": "#1f77b4", "val": "#ff7f0e"}
    assert charts.describe(figure).startswith("Chart: Run 1")

    class Page:
        def __init__(self) -> None:
            self.drawn: list = []

        def plotly_chart(self, figure, key):
            self.drawn.append(key)

        def caption(self, text):
            self.drawn.append(text)

    page = Page()
    charts.show(page, figure, key="k")
    assert page.drawn == ["k", charts.describe(figure)]
    with pytest.raises(ValueError, match="no title"):
        charts.show(page, figure.update_layout(title=None), key="untitled")


def test_home_shows_the_path_from_data_to_predict_and_the_next_step(engine: Engine) -> None:
    """Issue 18: what exists at each step and a link to the next one."""
    at = _run()
    steps = [m.value for m in at.markdown if m.value.startswith(":material/")]
    assert [s.split("**")[1] for s in steps] == [
        "[Data](/data)",
        "[Train](/train)",
        "[Evaluate](/evaluate)",
        "[Predict](/predict)",
        "[Recommend](/recommend)",
    ]
    assert all(s.startswith(":material/hourglass") for s in steps), "nothing done yet"
    assert any(m.value.startswith("**Next:** [Data](/data)") for m in at.markdown)
    _fill(engine)
    at = _run()
    steps = [m.value for m in at.markdown if m.value.startswith(":material/")]
    done = ":material/check_circle:"
    assert steps[0].startswith(done) and "1 market dataset, 0 recommender datasets" in steps[0]
    assert steps[1].startswith(done) and "1 job queued or training" in steps[1]


@pytest.mark.usefixtures("fixed_estimate")
def test_the_train_form_queues_the_job_on_the_device_chosen(engine: Engine) -> None:
    """The Device picker offers what this machine has; the job carries the choice to the
    worker (its job.json names it once the manager prepares the job)."""
    _fill(engine)
    at = _run("pages/train.py")
    device = next(s for s in at.selectbox if s.label == "Device")
    assert device.options[:2] == ["auto", "cpu"]
    assert ("cuda" in device.options) == torch.cuda.is_available()
    device.set_value("cpu").run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    with session_scope(engine) as session:
        from storage.repository import get_job

        assert get_job(session=session, job_id=2).request == {"device": "cpu"}


def test_the_rsi_panel_is_drawn_on_the_0_to_100_scale_of_its_guides() -> None:
    """Issue 39: the feature is stored in [0, 1] and was drawn as a flat line at 0 under the
    30 / 70 guides of a 0-100 axis."""
    import numpy as np
    import pandas as pd

    from core.market.features import rsi
    from pages import charts

    close = pd.Series(100 + np.cumsum(np.random.default_rng(0).normal(size=120)))
    rows = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=120),
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 1000.0,
            "rsi_14": rsi(close, 14),
            "macd_hist": 0.0,
            **{f"sma_ratio_{n}": 0.0 for n in (20, 50, 200)},
        }
    )
    figure = charts.candlestick_figure(rows, "AAA")
    trace = next(t for t in figure.data if t.name == "RSI 14")
    values = np.asarray(trace.y, dtype=float)
    values = values[np.isfinite(values)]
    assert values.min() >= 0 and values.max() <= 100 and values.max() - values.min() > 20
    np.testing.assert_allclose(values, 100 * rows["rsi_14"].dropna().to_numpy())
    axis = figure.layout[trace.yaxis.replace("y", "yaxis")]
    assert tuple(axis.range) == (0, 100)
    guides = [s.y0 for s in figure.layout.shapes]
    assert guides == [30, 70]


def test_home_waits_at_train_while_the_first_run_trains(engine: Engine) -> None:
    """Issue 39: during the demo's first training Home ticked Train beside "0 runs finished"
    and pointed "Next: Evaluate" at an empty page."""
    with session_scope(engine) as session:
        run = create_run(session=session, model_kind="dual_tower", config={}, seed=1)
        set_run_status(session=session, run_id=run.id, status=JobStatus.RUNNING)
        create_job(session=session, kind="train", run_id=run.id)
    at = _run()
    steps = {m.value.split("**")[1]: m.value for m in at.markdown if m.value.startswith(":")}
    assert steps["[Train](/train)"].startswith(":material/hourglass_empty:")
    assert "0 runs finished" in steps["[Train](/train)"]
    nexts = [m.value for m in at.markdown if m.value.startswith("**Next:**")]
    assert nexts == ["**Next:** [Data](/data) (a demo job is training)"], "the first open step"
    table = at.dataframe[0].value
    assert list(table["status"]) == ["running"] and table.notna().all().all(), "no None shown"


def test_the_evaluate_page_lists_runs_to_filter_name_and_tag(engine: Engine) -> None:
    """Issue 39: one row per run with the primary metric and its interval, the verdict and
    tags; a filter; a form that names and tags a run."""
    with session_scope(engine) as session:
        for model, figures in (
            ("dual_tower", {"rank_ic": 0.031, "rank_ic_low": 0.012, "rank_ic_high": 0.05}),
            ("lstm_attention", {"pearson": 0.2, "pearson_low": 0.1, "pearson_high": 0.3}),
        ):
            run = create_run(
                session=session, model_kind=model, config={"model": {"target": "trend"}}, seed=1
            )
            set_run_status(
                session=session,
                run_id=run.id,
                status=JobStatus.SUCCEEDED,
                summary_metrics={
                    "best_epoch": 3,
                    "test": {"7d": figures},
                    "verdict": "no evidence",
                    "primary": {"metric": next(iter(figures)), "name": "7-day"},
                },
            )
    at = _run("pages/evaluate.py")
    table = at.dataframe[0].value
    assert list(table["run"]) == [2, 1]
    assert list(table["primary"]) == [
        "0.200 (0.100..0.300) pearson 7d",
        "0.031 (0.012..0.050) rank_ic 7d",
    ]
    assert set(table["target"]) == {"trend"} and set(table["verdict"]) == {"no evidence"}
    at.text_input(key="evaluate-runs-text").set_value("lstm").run()
    assert list(at.dataframe[0].value["run"]) == [2]
    at.text_input(key="evaluate-runs-text").set_value("").run()
    at.selectbox(key="evaluate-runs-run").set_value(1)
    at.text_input(key="evaluate-runs-name").set_value("wide batch")
    at.text_input(key="evaluate-runs-add").set_value("sample, lr-2x")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert any("Run 1: name wide batch, tags lr-2x, sample." in s.value for s in at.success)
    with session_scope(engine) as session:
        from storage.repository import get_run

        named = get_run(session=session, run_id=1)
        assert named.name == "wide batch" and named.tags == ["lr-2x", "sample"]


@pytest.mark.usefixtures("fixed_estimate")
def test_train_links_a_finished_job_to_its_run_and_explains_a_flat_class_accuracy(
    engine: Engine,
) -> None:
    """Issue 39: a finished job points at Evaluate; a 7-day accuracy stuck at a third for
    the whole run gets a sentence, not silence."""
    from storage.repository import update_job

    _fill(engine)
    with session_scope(engine) as session:
        flat = [MetricRow(e, "val", "acc_7d", 0.333 + 0.001 * (e % 2)) for e in range(1, 6)]
        moving = [MetricRow(e, "val", "acc_30d", 0.3 + 0.03 * e) for e in range(1, 6)]
        append_metrics(session=session, run_id=1, rows=flat + moving)
        update_job(session=session, job_id=1, status=JobStatus.RUNNING)
        update_job(session=session, job_id=1, status=JobStatus.SUCCEEDED)
    at = _run("pages/train.py")
    assert any("[evaluate run 1](/evaluate?run=1)" in m.value for m in at.markdown)
    notes = [c.value for c in at.caption if "class accuracy stayed" in c.value]
    assert len(notes) == 1 and notes[0].startswith("The 7d class accuracy stayed at")
