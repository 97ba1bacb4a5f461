"""Issue 39, "What-ifs with a scale": on the Predict page a change of score is measured in
standard deviations of the model's test scores, sliders fit the training data, the class is
explained beside its score, and batch prediction offers a template of the columns it reads."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.proto.Slider_pb2 import Slider as SliderProto
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from core.checkpoints import load_checkpoint
from core.market.features import STOCK_FEATURES
from core.market.predict import TABULAR_COLUMNS, Predictor
from services.market.evaluation import run_dataset
from storage import DataHome, open_engine
from tests.pages.conftest import store_small_dataset, train_tiny

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "predict.py")
CHANGE = re.compile(
    r"^([+-]\d+\.\d+) = ([+-]\d+\.\d+) standard deviations of this model's 7-day test scores"
)


def _open(run_id: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception, at.exception
    return at


def _slider(at: AppTest, label: str):
    return next(s for s in at.slider if s.label == label)


def test_a_change_is_measured_in_standard_deviations_of_the_test_scores(
    trained: DataHome,
) -> None:
    at = _open(1)
    assert any(c.value.startswith("No change. A change is measured against σ") for c in at.caption)
    slider = _slider(at, "news_sentiment_mean")
    slider.set_value(slider.max if slider.value < 0 else slider.min).run()
    assert not at.exception, at.exception
    moved = _slider(at, "news_sentiment_mean").value
    said = next(m for c in at.caption if (m := CHANGE.match(c.value)))

    engine = open_engine(trained.database_url)
    frame = run_dataset(engine=engine, run_id=1)
    engine.dispose()
    first = sorted(frame["ticker"].unique())[0]
    row = frame[frame["ticker"] == first].sort_values("date").tail(1).reset_index(drop=True)
    changed = row.copy()
    changed.loc[0, "news_sentiment_mean"] = moved
    model = Predictor.from_checkpoint(trained.checkpoints / "run_1" / "best.pt")
    before = float(model.predict_frame(row)["score_7d"].iloc[0])
    after = float(model.predict_frame(changed)["score_7d"].iloc[0])
    tested = pd.read_parquet(trained.checkpoints / "run_1" / "test_predictions.parquet")
    std = tested["score_7d"].std()
    assert after != before
    assert float(said.group(1)) == pytest.approx(after - before, abs=5e-5)
    assert float(said.group(2)) == pytest.approx((after - before) / std, abs=5e-3 + 1e-9)


def test_a_run_without_stored_test_scores_says_so(data_home: DataHome) -> None:
    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    engine.dispose()
    (data_home.checkpoints / f"run_{run_id}" / "test_predictions.parquet").unlink()
    at = _open(run_id)
    said = [c.value for c in at.caption]
    assert not [c for c in said if "standard deviation" in c or "σ" in c], "no invented scale"
    assert any(
        c.startswith(f"Run {run_id} has no stored test scores at 7-day, 30-day") for c in said
    )


def test_sliders_fit_the_training_data(trained: DataHome) -> None:
    at = _open(1)
    count = _slider(at, "policy_event_count")
    assert count.step == 1 and count.proto.format == "%d" and count.min >= 0
    assert count.proto.data_type == SliderProto.INT, "an integer slider"
    assert all(v == round(v) for v in (count.min, count.max, count.value))
    share = _slider(at, "news_positive_share")
    assert share.min >= 0 and share.max <= 1
    rate = _slider(at, "rate_long")
    decimals = int(rate.proto.format.removeprefix("%.").removesuffix("f"))
    shown = {f"{v:.{decimals}f}" for v in (rate.min, (rate.min + rate.max) / 2, rate.max)}
    assert len(shown) == 3, f"{rate.proto.format} tells {rate.min}..{rate.max} apart"
    assert rate.step <= (rate.max - rate.min) / 100


@pytest.mark.parametrize(
    ("run_id", "bands"),
    [
        (1, ["'negative' below -0.250", "'none' from -0.250 to +0.250", "'positive' above +0.250"]),
        (2, ["'down' below +0.000", "'up' above +0.000"]),
    ],
)
def test_the_class_rule_is_stated_beside_the_classes(
    trained: DataHome, run_id: int, bands: list[str]
) -> None:
    meta = load_checkpoint(trained.checkpoints / f"run_{run_id}" / "best.pt").meta
    assert meta["data_config"]["relevance_threshold"] == 0.25, "the bands above read it"
    at = _open(run_id)
    rule = next(c.value for c in at.caption if "class head" in c.value)
    assert rule.startswith("The class is the most probable class of the model's own class head")
    assert all(band in rule for band in bands), rule


def test_the_batch_template_holds_the_columns_batch_prediction_reads(
    trained: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    files: dict[str, bytes] = {}
    keep = MemoryMediaFileStorage.load_and_get_id

    def recorded(self, data, mimetype, kind, filename=None):
        files[filename] = data
        return keep(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recorded)
    expected = {
        1: ["date", "ticker", *TABULAR_COLUMNS],
        2: ["date", "ticker", *STOCK_FEATURES],
    }
    for run_id, rows in ((1, 1), (2, 12)):
        at = _open(run_id)
        rules = sum("class head" in c.value for c in at.caption)
        button = next(b for b in at.get("download_button") if "template" in b.proto.label)
        assert button.proto.label == "Download a template (CSV)"
        template = files[f"run_{run_id}_batch_template.csv"]
        assert list(pd.read_csv(io.BytesIO(template)).columns) == expected[run_id]
        at.file_uploader[0].upload("template.csv", template, "text/csv").run()
        assert not at.error, [e.value for e in at.error]
        scored = at.dataframe[-1].value
        assert len(pd.read_csv(io.BytesIO(template))) == rows and len(scored) == 1
        assert sum("class head" in c.value for c in at.caption) == rules + 1, "beside batch classes"
