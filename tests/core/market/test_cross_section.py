"""Issue 36: cross-sectional learning. Features are put on the day's scale using that date's
tickers only, the label is the forward return's rank on its date, and a model trained on it
stops early on, and is judged by, the rank IC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.market.config import DataConfig
from core.market.cross_section import (
    CLIP,
    MAD_SCALE,
    cross_sectional_labels,
    is_cross_sectional,
    rank_scores,
    robust_zscores,
)


def _panel(dates: int = 6, tickers: int = 25, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2020-01-01", periods=dates)
    return pd.DataFrame(
        {
            "date": np.repeat(days, tickers),
            "ticker": np.tile([f"T{i}" for i in range(tickers)], dates),
            "x": rng.standard_t(3, dates * tickers) * 2 + 5,
            "fwd_return_7d": rng.normal(0, 0.03, dates * tickers),
        }
    )


def test_a_feature_is_scaled_by_its_own_date_s_median_and_spread() -> None:
    panel = _panel()
    scored = robust_zscores(panel, ["x"])["x"]
    day = panel["date"] == panel["date"].iloc[30]
    x = panel.loc[day, "x"].to_numpy()
    median = np.median(x)
    mad = np.median(np.abs(x - median)) * MAD_SCALE
    expected = np.clip((x - median) / mad, -CLIP, CLIP)
    np.testing.assert_allclose(scored[day].to_numpy(), expected, rtol=1e-5)  # float32
    assert scored.abs().max() <= CLIP


def test_a_date_s_scaling_reads_no_other_date() -> None:
    """Changing every other date, earlier and later, leaves a date's scores as they were:
    nothing from another day, past or future, enters."""
    panel = _panel(seed=1)
    day = panel["date"] == panel["date"].iloc[60]
    changed = panel.copy()
    changed.loc[~day, "x"] = np.random.default_rng(9).normal(100, 50, (~day).sum())
    before = robust_zscores(panel, ["x"])["x"][day]
    after = robust_zscores(changed, ["x"])["x"][day]
    np.testing.assert_allclose(before.to_numpy(), after.to_numpy())


def test_the_label_is_the_forward_return_s_rank_on_its_date() -> None:
    panel = _panel(seed=2)
    labels = cross_sectional_labels(panel, [7])
    for _, rows in panel.groupby("date"):
        score = labels["trend_7d"][rows.index]
        order = rows["fwd_return_7d"].rank().to_numpy()
        np.testing.assert_allclose(score.rank().to_numpy(), order)
        n = len(rows)
        assert score.min() == pytest.approx(1 / n - 1) and score.max() == pytest.approx(1 - 1 / n)
        assert score.mean() == pytest.approx(0.0, abs=1e-12)
        up = labels["up_7d"][rows.index]
        assert up.sum() == n // 2, "the upper half of the day is 'up'"
        classes = labels["class_7d"][rows.index]
        assert set(classes.value_counts()) <= {n // 3, n // 3 + 1, n // 3 + 2}
    other = panel.copy()
    first = other["date"] == other["date"].iloc[0]
    other.loc[~first, "fwd_return_7d"] *= -3
    np.testing.assert_allclose(
        rank_scores(other, "fwd_return_7d")[first], labels["trend_7d"][first]
    )


def test_a_date_with_too_few_tickers_has_no_cross_sectional_label() -> None:
    panel = _panel(tickers=4)
    assert rank_scores(panel, "fwd_return_7d").isna().all()


def test_auto_turns_it_on_from_twenty_tickers() -> None:
    assert is_cross_sectional(_panel(tickers=20), "auto")
    assert not is_cross_sectional(_panel(tickers=19), "auto")
    assert is_cross_sectional(_panel(tickers=3), "on")
    assert not is_cross_sectional(_panel(tickers=30), "off")


def test_configs_stored_before_it_keep_it_off() -> None:
    stored = DataConfig().to_dict()
    del stored["cross_sectional"]
    assert DataConfig.from_dict(stored).cross_sectional == "off"
    assert DataConfig.from_dict({"horizons": [7]}, partial=True).cross_sectional == "auto"


@pytest.fixture(scope="module")
def universe():
    """A generated market of 24 tickers over four years, built with the defaults."""
    from core.market.sources import build_market_dataset, synthetic_data

    tickers = [f"S{i:02d}" for i in range(24)]
    data = synthetic_data(tickers, "2017-01-01", "2020-12-31", seed=5, signal=True, horizons=[7])
    config = DataConfig(tickers=tickers, horizons=[7])
    return build_market_dataset(data, config), config


def test_a_built_universe_has_labels_on_the_day_s_scale(universe) -> None:
    frame, _ = universe
    labelled = frame.dropna(subset=["trend_7d"])
    by_date = labelled.groupby("date")["trend_7d"]
    assert by_date.mean().abs().max() < 1e-9, "each date's ranks are centred"
    ranks = labelled.groupby("date")["fwd_return_7d"].rank()
    assert (labelled.groupby("date")["trend_7d"].rank() == ranks).all()
    oracle = labelled.groupby("date")["oracle_trend_7d"].mean()
    assert oracle.abs().max() < 1e-9, "the oracle is on the day's scale too"


def test_a_model_trained_cross_sectionally_stops_on_and_is_judged_by_rank_ic(universe) -> None:
    from core.market.evaluation import evaluate_model
    from core.market.models import model_spec
    from core.market.predict import Predictor
    from core.market.training import train_model

    frame, config = universe
    spec = model_spec("compact_dual_tower")
    training = spec.training_config_class.from_dict(
        {"epochs": 2, "batch_size": 256, "scheduler": {"warmup_epochs": 0}}, partial=True
    )
    result = train_model(
        frame,
        model_name="compact_dual_tower",
        model_config=spec.config_class.from_dict({"tower_dim": 8}, partial=True),
        training=training,
        data=config,
    )
    assert result.loaders.cross_sectional
    assert result.trainer.monitor == "val/rank_ic" and result.trainer.maximize
    assert all("val/rank_ic" in record for record in result.history)
    evaluation = evaluate_model(
        result.spec,
        result.trainer.model,
        result.loaders,
        frame,
        baselines=("majority", "momentum", "linear"),
    )
    judged = evaluation.report["uncertainty"]
    assert judged["primary"]["metric"] == "rank_ic"
    assert judged["primary"]["use"]["name"] == "cross-section"
    assert "market_neutral" in evaluation.report["reports"]["model"]["7d"]["finance"]
    # The Predictor, given the test date's rows, scores a row as evaluation did.
    assert result.trainer.checkpoint_meta["cross_sectional"] is True
    predictor = Predictor(
        spec=result.spec,
        model=result.trainer.model,
        standardizer=result.loaders.train.standardizer,
        meta=result.trainer.checkpoint_meta,
    )
    test = result.loaders.test.meta.merge(frame, on=["date", "ticker"]).head(300)
    day = test["date"].iloc[0]
    alone = predictor.predict_frame(test[test["date"] == day].head(1), frame)
    scored = evaluation.predictions.set_index(["date", "ticker"])
    key = (alone["date"].iloc[0], alone["ticker"].iloc[0])
    assert alone["score_7d"].iloc[0] == pytest.approx(scored.loc[key, "score_7d"], abs=1e-5)
    lone = predictor.predict_frame(test[test["date"] == day].head(1))
    assert lone["score_7d"].iloc[0] != pytest.approx(scored.loc[key, "score_7d"], abs=1e-5), (
        "without its date's other tickers a row cannot be put on the day's scale"
    )
