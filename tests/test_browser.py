"""The whole flow in a real browser (Playwright driving Debian's Chromium) against the real
server with its password and API token set, as a new user would walk it:

Data (build a synthetic dataset) -> Train (start a dual tower; the loss chart grows while it
runs; it finishes) -> Evaluate (metrics table and confusion matrix) -> Predict (move a
context slider; the score changes) -> Recommend (ten items for a user; the cold-start form)
-> forecasts as the days pass (Predict's Forecast tab, newer prices added on the Data page)
-> Evaluate's live section -> the API on the same port. A screenshot of each page lands in
test-artifacts/browser/.
Every wait is on content, never a sleep.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, running_server

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts" / "browser"
WAIT_MS = 120_000
PASSWORD, TOKEN = "demo-password", "demo-token"
# Points in the live loss chart: Plotly keeps them on the chart's element.
CHART_POINTS = (
    "() => { const g = document.querySelector('.js-plotly-plot');"
    " if (!g || !g.calcdata) return 0;"
    " return g.calcdata.reduce((n, c) => Math.max(n, c.length || 0), 0); }"
)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _open_build_form(page) -> None:
    """Unfold the Data page's build form: folded once datasets exist (issue 39)."""
    page.get_by_text("Build a dataset").first.wait_for(timeout=WAIT_MS)
    if not page.get_by_text("Newer rows for a stored dataset").is_visible():
        page.get_by_text("Build a dataset").first.click()
    page.get_by_text("Newer rows for a stored dataset").wait_for(timeout=WAIT_MS)


def _api(url: str, token: str | None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _newer_prices(folder: Path) -> tuple[Path, Path]:
    """Prices after the walk's dataset (AAA and BBB to 2024-12-31): January 2025, then
    February and March, as two upload files."""
    import pandas as pd

    from core.market.sources import synthetic_data

    def generated(end: str) -> pd.DataFrame:
        data = synthetic_data(["AAA", "BBB"], "2015-01-01", end, seed=42, signal=True, horizons=[7])
        return data.prices.assign(date=lambda f: pd.to_datetime(f["date"]))

    def last_close(frame: pd.DataFrame) -> pd.Series:
        return frame[frame["date"] == "2024-12-31"].set_index("ticker")["close"]

    stored, prices = generated("2024-12-31"), generated("2025-03-31")
    # A longer series is another draw: carry on from the stored closes, not from its own.
    factor = prices["ticker"].map(last_close(stored) / last_close(prices))
    prices = prices.assign(**{c: prices[c] * factor for c in ("open", "high", "low", "close")})
    dates = prices["date"]
    paths = (folder / "january.csv", folder / "february_march.csv")
    prices[(dates > "2024-12-31") & (dates <= "2025-01-31")].to_csv(paths[0], index=False)
    prices[dates > "2025-01-31"].to_csv(paths[1], index=False)
    return paths


def test_a_new_user_walks_every_page(tmp_path: Path, browser_page) -> None:
    page = browser_page
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    environment = {"TRENDLAB_PASSWORD": PASSWORD, "TRENDLAB_API_TOKEN": TOKEN}
    with running_server(tmp_path / "home", **environment) as url:
        # A deep link meets the password gate first.
        page.goto(f"{url}/data")
        page.get_by_text("This deployment is private").wait_for(timeout=WAIT_MS)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()

        # Data: build a small synthetic dataset through the form.
        page.get_by_text("Stored datasets").wait_for(timeout=WAIT_MS)
        _open_build_form(page)
        page.get_by_label("Name").fill("browser")
        page.get_by_label("Tickers (comma-separated)").fill("AAA,BBB")
        page.get_by_role("button", name="Build and store").click()
        page.get_by_text("Stored 'browser'").wait_for(timeout=WAIT_MS)
        _shot(page, "data")

        # Train: a dual tower for 12 epochs; the chart gains points while it runs.
        page.get_by_role("link", name="Train", exact=True).click()
        page.get_by_text("New training run").wait_for(timeout=WAIT_MS)
        page.get_by_text("Estimated time").first.wait_for(timeout=WAIT_MS)
        epochs = page.get_by_role("spinbutton", name="Epochs (at most)")
        epochs.fill("12")
        epochs.press("Enter")
        page.get_by_text("at most 12 epochs").first.wait_for(timeout=WAIT_MS)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Queued job 1.").wait_for(timeout=WAIT_MS)
        page.get_by_text(re.compile(r"Job 1 \(run 1\): running")).wait_for(timeout=WAIT_MS)
        page.get_by_test_id("stPlotlyChart").first.wait_for(timeout=WAIT_MS)
        first = page.evaluate(CHART_POINTS)
        page.wait_for_function(f"({CHART_POINTS})() > {first}", timeout=WAIT_MS)
        page.get_by_test_id("stPlotlyChart").first.scroll_into_view_if_needed()
        _shot(page, "train")
        page.get_by_text(re.compile(r"Job 1 \(run 1\): succeeded")).wait_for(timeout=WAIT_MS)

        # Evaluate: the metrics table beside the baselines and the confusion matrices.
        page.get_by_role("link", name="Evaluate", exact=True).click()
        page.get_by_text("Confusion matrix, 7d", exact=True).wait_for(timeout=WAIT_MS)
        tables = page.get_by_test_id("stDataFrame")
        runs = tables.nth(0).locator("table")  # the runs table comes first (issue 39)
        assert runs.get_attribute("aria-rowcount") == "2", "header + the one run"
        table = tables.nth(1).locator("table")
        # header + model + majority, momentum, ridge, boosting, persistence (relevance) and oracle
        assert table.get_attribute("aria-rowcount") == "8", "header + model + 6 baselines"
        _shot(page, "evaluate")

        # Predict: move the first context slider; the 7-day score's change appears.
        page.get_by_role("link", name="Predict", exact=True).click()
        page.get_by_text("Predicted class").first.wait_for(timeout=WAIT_MS)
        slider = page.get_by_role("slider").first
        slider.focus()
        for _ in range(15):
            slider.press("ArrowRight")
        page.get_by_text("vs the row").first.wait_for(timeout=WAIT_MS)
        _shot(page, "predict")

        # Forecasts as the days pass: Predict's Forecast tab forecasts as of the dataset's
        # last date, the Data page adds a month of newer prices, Predict forecasts again,
        # the Data page adds two more months; Evaluate then follows the two live forecasts.
        newer = _newer_prices(tmp_path)
        for stage, (as_of, upload) in enumerate(
            (("2024-12-31", newer[0]), ("2025-01-31", newer[1])), start=2
        ):
            page.get_by_role("link", name="Predict", exact=True).click()
            page.get_by_role("tab", name="Forecast").click()
            page.get_by_role("button", name="Forecast now").click()
            page.get_by_text(f"as of {as_of}").first.wait_for(timeout=WAIT_MS)
            if stage == 3:
                page.get_by_text("score per ticker with its band").first.wait_for(timeout=WAIT_MS)
                _settled(page)
                _shot(page, "predict_forecast")
            page.get_by_role("link", name="Data", exact=True).click()
            _open_build_form(page)
            page.get_by_text("Newer rows for a stored dataset").click()
            page.locator("input[type=file]").first.set_input_files(str(upload))
            page.get_by_text(upload.name).first.wait_for(timeout=WAIT_MS)  # uploaded
            page.get_by_role("button", name="Add the rows and rebuild").click()
            try:
                page.get_by_text(f"to version {stage}").first.wait_for(timeout=WAIT_MS)
            except Exception:
                _shot(page, f"failed_update_{stage}")
                raise
        page.get_by_role("link", name="Evaluate", exact=True).click()
        live = page.get_by_text("Live against the backtest")
        live.wait_for(timeout=WAIT_MS)
        page.get_by_text("too few forecasts to judge").first.wait_for(timeout=WAIT_MS)
        _settled(page)
        live.scroll_into_view_if_needed()
        _shot(page, "evaluate_live")

        # Recommend: ten items for the first user, then the cold-start form.
        page.get_by_role("link", name="Recommend", exact=True).click()
        page.get_by_text("Engine:").first.wait_for(timeout=WAIT_MS)
        rows = page.get_by_test_id("stDataFrame").first.locator("table")
        assert rows.get_attribute("aria-rowcount") == "11", "header + ten items"
        _shot(page, "recommend")
        page.get_by_role("tab", name="New user").click()
        page.get_by_test_id("stMultiSelect").filter(has_text="skills").first.click()
        page.get_by_role("option").first.click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Recommend").click()
        page.get_by_text("new user: content-based from the stated profile").wait_for(
            timeout=WAIT_MS
        )

        # The API answers on the same port, and only with the token.
        endpoint = f"{url}/api/recommendations/startups/for-developer/u0001?limit=10"
        assert _api(endpoint, None) == 401
        assert _api(endpoint, TOKEN) == 200
        request = urllib.request.Request(endpoint, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert len(json.loads(response.read())["items"]) == 10
    assert sorted(p.stem for p in ARTIFACTS.glob("*.png")) == [
        "data",
        "evaluate",
        "evaluate_live",
        "predict",
        "predict_forecast",
        "recommend",
        "train",
    ]


# What a read-only visitor may press: navigation, tabs, forms that only read, downloads.
READ_ONLY_CONTROLS = {
    "Recommend",
    "Reset to the row's values",
    "Download these rows (CSV)",
    "Download the test predictions (CSV)",
}
STATE_CHANGING = {
    "Build and store",
    "Validate and store",
    "Start training",
    "Cancel this job",
    "Resume from last checkpoint",
    "Serve this run",
    "Browse files",
}


def _read_only_home(home: Path) -> None:
    """Two recommender runs (so "Serve this run" would have something to switch to), a
    trained dual tower, and an interrupted job (so "Resume" would show)."""
    from core.recsys.config import recsys_configs
    from core.recsys.synthetic import RecsysSpec, generate_recsys
    from services.recsys.runs import train_recsys_run
    from storage import DataHome, open_engine
    from storage.models import JobStatus
    from storage.recsys import save_recsys_dataset
    from storage.repository import create_job, session_scope, update_job
    from tests.pages.conftest import store_small_dataset, train_tiny

    data_home = DataHome(home).ensure()
    engine = open_engine(data_home.database_url)
    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=500, seed=5))
    save_recsys_dataset(engine=engine, name="startups", data=data, description="test")
    tiny, tiny_training = recsys_configs({"hidden_dims": [8], "embedding_dim": 4, "epochs": 1})
    for _ in range(2):
        train_recsys_run(
            engine=engine,
            home=data_home,
            dataset_name="startups",
            config=tiny,
            training=tiny_training,
        )
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    with session_scope(engine) as session:
        job = create_job(session=session, kind="train", run_id=run_id)
        update_job(session=session, job_id=job.id, status=JobStatus.RUNNING)
        update_job(session=session, job_id=job.id, status=JobStatus.INTERRUPTED)
    engine.dispose()


def _controls(page) -> set[str]:
    """The labels of every button and file input on the page, tabs excluded."""
    buttons = page.locator("button:visible:not([role=tab])").all_inner_texts()
    labels = {text.strip() for text in buttons if text.strip()}
    if page.locator("input[type=file]").count():
        labels.add("Browse files")
    return labels


def test_a_read_only_visitor_finds_no_control_that_changes_state(
    tmp_path: Path, browser_page
) -> None:
    """Issue 13: in read-only mode, every page and every tab, clicked through in a real
    browser, offers only controls that read."""
    page = browser_page
    home = tmp_path / "home"
    _read_only_home(home)
    seen: dict[str, set[str]] = {}
    with running_server(home, TRENDLAB_READ_ONLY="1") as url:
        for name in ("home", "data", "train", "evaluate", "predict", "recommend"):
            page.goto(f"{url}/{'' if name == 'home' else name}")
            page.get_by_test_id("stMainBlockContainer").wait_for(timeout=WAIT_MS)
            page.wait_for_load_state("networkidle")
            page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=WAIT_MS)
            seen[name] = _controls(page)
            # Last first: tabs nested in the first tab (Predict's News, Policy, Macro beside
            # the what-if results) are visible until a later top-level tab is opened.
            for tab in reversed(page.get_by_role("tab").all()):
                if not tab.is_visible():
                    continue
                tab.click()
                page.wait_for_timeout(300)
                seen[f"{name}:{tab.inner_text()}"] = _controls(page)
        _shot(page, "read_only_recommend")
    found = set().union(*seen.values())
    assert found & STATE_CHANGING == set(), seen
    assert found <= READ_ONLY_CONTROLS, seen
    assert "Recommend" in found, "the read-only controls are really there"
    assert "recommend:Models" in seen, "the tab with the registry was opened"


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
TALL_DESKTOP = {"width": 1280, "height": 1800}
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth + 1"


def _until_shown(page, url: str, text: str, deadline: float) -> None:
    """Reload ``url`` until ``text`` is on the page (a page does not refresh on its own)."""
    import time

    while True:
        page.goto(url)
        page.get_by_test_id("stMainBlockContainer").wait_for(timeout=WAIT_MS)
        try:
            page.get_by_text(text).first.wait_for(timeout=10_000)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on {url} in time") from None


def _settled(page) -> None:
    """The script run is over (no "running" widget) and nothing is still loading."""
    page.wait_for_load_state("networkidle")
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=WAIT_MS)
    page.wait_for_timeout(500)


def _screenshots(page, url: str, name: str, ready: str) -> None:
    """The page at 1280 px and at a 390 px phone width, with no sideways scrolling."""
    for size, suffix in ((DESKTOP, "1280"), (PHONE, "390")):
        page.set_viewport_size(size)
        page.goto(url)
        page.get_by_text(ready).first.wait_for(timeout=WAIT_MS)
        _settled(page)
        assert page.evaluate(NO_SIDEWAYS_SCROLL), f"{name} scrolls sideways at {suffix} px"
        _shot(page, f"first_run_{name}_{suffix}")


def test_a_fresh_server_shows_trained_models_without_a_click(tmp_path: Path, browser_page):
    """Issue 18: a fresh server on an empty home stores the demo data and trains one quick
    model per kind by itself; within 3 minutes Evaluate shows a trained dual tower and
    Recommend a two-tower engine. Screenshots of the first-run pages at 1280 and 390 px."""
    import time

    page = browser_page
    started = time.monotonic()
    with running_server(tmp_path / "home", TRENDLAB_DEMO_JOBS="1") as url:
        deadline = started + 180
        _until_shown(page, f"{url}/recommend", "Serving recommender run", deadline)
        _until_shown(page, f"{url}/evaluate", "trained dual_tower", deadline)
        elapsed = time.monotonic() - started
        _screenshots(page, f"{url}/", "home", "Next:")
        _screenshots(page, f"{url}/evaluate", "evaluate", "Verdict:")
        page.set_viewport_size(TALL_DESKTOP)  # the preset and the estimate in one picture
        page.goto(f"{url}/train")
        page.get_by_text("New training run").first.wait_for(timeout=WAIT_MS)
        page.get_by_text("quick", exact=True).first.click()
        estimate = page.get_by_text("Estimated time").first
        estimate.wait_for(timeout=WAIT_MS)
        _settled(page)
        estimate.scroll_into_view_if_needed()
        _shot(page, "first_run_train_1280")
        page.set_viewport_size(PHONE)
        estimate.wait_for(timeout=WAIT_MS)
        _settled(page)
        assert page.evaluate(NO_SIDEWAYS_SCROLL), "Train scrolls sideways at 390 px"
        estimate.scroll_into_view_if_needed()
        _shot(page, "first_run_train_390")
    assert elapsed < 180, elapsed
