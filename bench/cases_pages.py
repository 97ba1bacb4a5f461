"""Dashboard cases: first render of each page on the demo database, and page reruns while a
background job trains.

Pages run through ``streamlit.testing.v1.AppTest`` (the script as the server runs it, minus
the browser). The demo database is what ``trendlab serve`` creates, plus one trained dual
tower and one attention LSTM so Evaluate and Predict have runs to draw.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from bench.harness import Timed, case

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = ("home", "data", "train", "evaluate", "predict", "recommend")


def _demo_home() -> None:
    """Store the demo dataset and train one run per model family (a few epochs each)."""
    from core.market.models import model_spec
    from services.demo import store_demo_datasets
    from services.market.runs import execute_run, start_run
    from storage import DataHome, open_engine

    home = DataHome.from_env().ensure()
    engine = open_engine(home.database_url)
    store_demo_datasets(engine=engine)  # what `trendlab serve` stores on a first start
    for model, epochs in (("dual_tower", 3), ("lstm_attention", 2)):
        spec = model_spec(model)
        training = spec.training_config_class.from_dict({"epochs": epochs}, partial=True)
        run_id = start_run(
            engine=engine,
            model_name=model,
            dataset_name="demo",
            training=training,
            model_config=spec.config_class(),
        )
        execute_run(engine=engine, home=home, run_id=run_id, device="cpu")
    engine.dispose()


def _render(page: str, query: dict[str, str] | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    if page != "home":
        at.switch_page(f"pages/{page}.py")
        for key, value in (query or {}).items():
            at.query_params[key] = value
        at.run()
    if at.exception:
        raise RuntimeError(f"{page}: {at.exception[0].message}")
    return at


@case(
    "pages.first_render",
    repeats=1,
    description="each page's first render in a new session on the demo database "
    "(cold: the first visit after the server started; warm: a later visitor)",
    target="under 1.5 s",
)
def first_render(scratch: Path) -> Timed:
    os.environ["TRENDLAB_JOB_RUNNER"] = "0"
    _demo_home()
    _render("home")  # the server has imported everything before anyone visits

    def render_all() -> dict[str, float]:
        figures = {}
        for label in ("cold", "warm"):
            for page in PAGES:
                start = time.perf_counter()
                _render(page)
                figures[f"{page}_{label}_s"] = time.perf_counter() - start
        return figures

    return render_all


@case(
    "pages.rerun_during_training",
    repeats=1,
    description="30 reruns of Train, Evaluate and Predict each while a dual tower trains "
    "in a worker process (the server's job runner ingesting its metrics)",
    target="p95 under 0.5 s",
)
def rerun_during_training(scratch: Path) -> Timed:
    os.environ["TRENDLAB_JOB_RUNNER"] = "0"
    _demo_home()
    from core.market.models import model_spec
    from services.jobs.manager import JobManager, JobRunner
    from storage import DataHome, open_engine

    spec = model_spec("dual_tower")
    manager = JobManager(
        engine=open_engine(DataHome.from_env().database_url), home=DataHome.from_env()
    )
    sessions = {page: _render(page) for page in ("train", "evaluate", "predict")}

    def reruns() -> dict[str, float]:
        job = manager.submit_training(
            model_name="dual_tower",
            dataset_name="demo",
            training=spec.training_config_class.from_dict({"epochs": 200}, partial=True),
            model_config=spec.config_class(),
            baselines=(),
        )
        runner = JobRunner(manager)
        runner.start()
        while not manager.workers:  # wait for the worker to start training
            time.sleep(0.1)
        time.sleep(3)
        figures = {}
        for page, at in sessions.items():
            seconds = []
            for _ in range(30):
                start = time.perf_counter()
                at.run()
                seconds.append(time.perf_counter() - start)
            seconds.sort()
            figures[f"{page}_p50_s"] = statistics.median(seconds)
            figures[f"{page}_p95_s"] = seconds[int(0.95 * len(seconds)) - 1]
        manager.cancel(job)
        time.sleep(2)
        runner.stop()
        return figures

    return reruns
