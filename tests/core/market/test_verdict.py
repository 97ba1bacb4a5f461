"""Issue 22: honest verdicts on the bundled real S&P 500 / NASDAQ data. A constant predictor
and a model trained on shuffled labels get "no evidence" or "collapsed", never "beats".
Issue 36: each target is judged by its use; a relevance (co-movement) run by the variance a
forecast-sized hedge removes, with no profit and loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.market.evaluation import evaluate_model, score_report
from core.market.models import model_spec
from core.market.predictions import baseline_predictions, outcomes
from core.market.sources import build_market_dataset, bundled_config, bundled_data
from core.market.training import train_model
from core.market.uncertainty import MIN_BLOCKS
from core.market.verdict import (
    MIN_RANK_IC_TICKERS,
    EvaluationConfig,
    declare_primary,
    uncertainty_report,
)

TINY = {
    "context_tower": {"hidden_dims": [8], "embedding_dim": 4},
    "stock_tower": {"hidden_dims": [8], "embedding_dim": 4},
    "head": {"hidden_dims": [4]},
}
RIVALS = ("majority", "momentum", "linear")


@pytest.fixture(scope="module")
def shuffled():
    """A tiny dual tower trained on shuffled labels of the bundled indices, and its data."""
    frame = build_market_dataset(bundled_data(), bundled_config())
    spec = model_spec("dual_tower")
    training = spec.training_config_class.from_dict(
        {"epochs": 2, "batch_size": 64, "scheduler": {"warmup_epochs": 0}, "seed": 3}, partial=True
    )
    result = train_model(
        frame,
        model_name="dual_tower",
        model_config=spec.config_class.from_dict(TINY, partial=True),
        training=training,
        shuffle_labels=True,
    )
    return frame, result


def test_the_primary_metric_is_declared_from_the_cross_section() -> None:
    dates = np.repeat(pd.bdate_range("2021-01-01", periods=5), MIN_RANK_IC_TICKERS)
    wide = pd.DataFrame({"date": dates, "ticker": np.tile(range(MIN_RANK_IC_TICKERS), 5)})
    narrow = wide[wide["ticker"] < 2]
    assert declare_primary(EvaluationConfig(), wide)["metric"] == "rank_ic"
    auto = declare_primary(EvaluationConfig(), narrow)
    assert auto["metric"] == "pearson" and "2 tickers" in auto["reason"]
    assert declare_primary(EvaluationConfig(primary="rank_ic"), narrow)["metric"] == "rank_ic"


def test_a_shuffled_label_model_on_the_bundled_indices_never_beats(shuffled) -> None:
    frame, result = shuffled
    evaluation = evaluate_model(
        result.spec, result.trainer.model, result.loaders, frame, baselines=RIVALS
    )
    judged = evaluation.report["uncertainty"]
    assert judged["primary"]["metric"] == "hedge", "relevance is judged as a hedge"
    assert judged["primary"]["use"]["name"] == "hedge"
    assert judged["verdict"]["verdict"] in ("no evidence", "collapsed", "too few periods")
    assert not judged["verdict"]["sentence"].startswith("the model beats")
    for section in judged["horizons"].values():
        assert section["primary"]["role"] == "primary"
        assert sum(c["role"] == "primary" for c in section["comparisons"]) == 1
        assert 0 <= section["primary"]["spa_pvalue"] <= 1


def test_a_constant_predictor_on_the_bundled_indices_is_collapsed_and_earns_nothing(
    shuffled,
) -> None:
    frame, result = shuffled
    spec = result.spec
    rivals = baseline_predictions(spec, frame, result.loaders, names=RIVALS)
    predictors = {"model": rivals["majority"], **rivals}
    rows = outcomes(spec, frame, predictors["model"])
    reports = {name: score_report(spec, p, rows) for name, p in predictors.items()}
    judged = uncertainty_report(spec, predictors, rows, reports)
    assert judged["verdict"]["verdict"] == "collapsed", judged["verdict"]
    assert judged["verdict"]["sentence"].startswith("collapsed: no skill")
    for section in reports["model"].values():
        assert not {"market_neutral", "long_only", "time_series"} & set(section["finance"])
        assert "hedge" in section, "a co-movement forecast shows what its hedge removes"
    for section in judged["horizons"].values():
        primary = section["primary"]
        assert primary["difference"] <= 1e-12, "a constant never beats the mean on its hedge"


def test_the_primary_line_shows_the_headline_s_bound_whatever_the_horizons(shuffled) -> None:
    """The headline's one-sided bound is 1 - 0.05 / H over the H horizons judged: the primary
    line's interval is the one whose lower end it is (90 % for one horizon), so the two never
    disagree. A horizon with fewer than 10 independent blocks (30 days on this test period)
    is not judged: no interval, and it does not count in H."""
    frame, result = shuffled
    spec = result.spec
    rivals = baseline_predictions(spec, frame, result.loaders, names=RIVALS)
    predictors = {"model": rivals["linear"], "majority": rivals["majority"]}
    rows = outcomes(spec, frame, predictors["model"])
    reports = {name: score_report(spec, p, rows) for name, p in predictors.items()}
    for horizons in (["7d"], ["7d", "30d"]):
        kept = {n: {h: r[h] for h in horizons} for n, r in reports.items()}
        judged = uncertainty_report(spec, predictors, rows, kept)
        sections = [judged["horizons"][h] for h in horizons]
        counted = sum(section["judged"] for section in sections)
        assert counted == 1, [section["blocks"] for section in sections]
        for section in sections:
            line = section["primary"]
            if section["judged"]:
                assert section["blocks"] >= MIN_BLOCKS
                assert line["family_level"] == pytest.approx(0.90)
                assert (line["family_low"], line["family_high"]) == (line["low"], line["high"])
                assert "90% interval" in line["sentence"], line["sentence"]
            else:
                assert section["blocks"] < MIN_BLOCKS
                assert "too few independent periods" in line["sentence"]
                assert np.isnan(line["low"]) and np.isnan(section["intervals"]["model"]["hedge"][0])
        beats = any(s["primary"]["verdict"] == "beats" for s in sections if s["judged"])
        assert (judged["verdict"]["verdict"] == "beats") == beats, judged["verdict"]
        if len(horizons) == 2 and judged["verdict"]["verdict"] != "collapsed":
            assert "at 30 days too few independent periods" in judged["verdict"]["sentence"]


@pytest.mark.slow
def test_on_the_planted_market_the_dual_tower_beats_the_unfitted_baselines_on_spa() -> None:
    """The planted synthetic market (5 tickers, 2016-2020) judged as one try: the dual
    tower's correlation against the majority class, momentum and the constant mean has an SPA
    p-value below 0.05 and the verdict says it beats them; it is not collapsed. (Against
    ridge and boosting a model this small on five tickers has no evidence; on the 100-ticker
    benchmark of docs/models.md, too slow for a test, it has none either on its primary
    metric there, rank IC: SPA p-values 0.30-0.89 at 7 days, 0.45-0.70 at 30.) The heads
    have no dropout: dropping units of a 4-unit head left the 30-day class head predicting
    'none' on 96-100 % of rows ("collapsed") for 2 of 6 training seeds, with either dropout
    mask; without it all of seeds 1-6 pass."""
    from core.market.config import DataConfig
    from core.market.sources import synthetic_data
    from core.market.tries import tries_report

    tickers = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    data = synthetic_data(
        tickers, "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    frame = build_market_dataset(data, DataConfig())
    spec = model_spec("dual_tower")
    training = spec.training_config_class.from_dict(
        {"epochs": 12, "batch_size": 64, "scheduler": {"warmup_epochs": 0}, "seed": 1},
        partial=True,
    )
    result = train_model(
        frame,
        model_name="dual_tower",
        model_config=spec.config_class.from_dict(
            {**TINY, "head": {"hidden_dims": [4], "dropout": 0.0}}, partial=True
        ),
        training=training,
    )
    rivals = ("majority", "momentum")
    evaluation = evaluate_model(
        result.spec, result.trainer.model, result.loaders, frame, baselines=rivals
    )
    judged = evaluation.report["uncertainty"]
    assert not judged["collapse"]["collapsed"], judged["collapse"]
    model = evaluation.predictor("model")
    tries = tries_report(
        spec,
        {"dual tower": model},
        {name: evaluation.predictor(name) for name in rivals},
        outcomes(spec, frame, model),
        primary=judged["primary"],
    )
    assert min(s["spa_pvalue"] for s in tries["horizons"].values()) < 0.05, tries["horizons"]
    assert tries["verdict"]["verdict"] == "beats", tries["verdict"]
    assert tries["verdict"]["sentence"].startswith("the run beats the baseline")
    assert "SPA p-value" in tries["verdict"]["sentence"]


@pytest.mark.slow
def test_on_the_default_planted_market_the_experiment_over_three_seeds_beats_every_baseline() -> (
    None
):
    """Issue 22's positive control: the demo's planted market (7 tickers, 2015-2024, seed 42)
    and the dual tower as shipped (input gates on) trained with seeds 42, 43 and 44, what
    `trendlab train dual_tower --seeds 3` runs; the mean of the three models judged as one
    against majority, momentum, ridge and boosting (the experiment's verdict on the CLI and
    the Evaluate page). The verdict says "beats", on the 30-day correlation lead over boosting
    (+0.082, 95 % interval +0.007..+0.149), whose SPA p-value is below 0.05 (0.033; 0.066
    times the two horizons, so at the headline's family-wise level the SPA test alone would
    not say so). Single models are not reliably enough: seeds 42, 43 and 44 alone read
    "beats" with 30-day SPA p-values 0.052 and 0.035, and "no evidence" with 0.303; over 8
    seeds, 2 pass both tests (docs/models.md, "Averaging seeds on the planted market").
    Early stopping waits 6 epochs rather than 15 to halve the time: the three runs' best
    epochs (6, 5, 4) are followed by no better one in 15, so the weights kept are the same
    (measured: the same lead, interval and p-value as `python -m bench.planted_verdict
    --seeds 42,43,44 --ensemble --no-mlp`, which trains them as shipped)."""
    from core.market.config import DEFAULT_TICKERS, DataConfig
    from core.market.evaluation import ensemble_predictions, judge_predictions
    from core.market.predictions import model_predictions
    from core.market.sources import DEMO_END, DEMO_SEED, DEMO_START, synthetic_data

    data = synthetic_data(
        DEFAULT_TICKERS, DEMO_START, DEMO_END, seed=DEMO_SEED, signal=True, horizons=[7, 30]
    )
    frame = build_market_dataset(data, DataConfig())
    spec = model_spec("dual_tower")
    assert spec.config_class().input_gate_l1 > 0, "the shipped model has its input gates"
    members = []
    for seed in (42, 43, 44):
        training = spec.training_config_class.from_dict(
            {"seed": seed, "early_stopping_patience": 6}, partial=True
        )
        result = train_model(frame, model_name="dual_tower", training=training)
        members.append(model_predictions(result.spec, result.trainer.model, result.loaders.test))
    mean = judge_predictions(result.spec, ensemble_predictions(members), result.loaders, frame)
    judged = mean.report["uncertainty"]
    assert judged["primary"]["metric"] == "pearson"
    lead = judged["horizons"]["30d"]["primary"]
    assert lead["baseline"] == "boosting", lead
    assert lead["spa_pvalue"] < 0.05 and lead["low"] > 0, lead
    assert judged["verdict"]["verdict"] == "beats", judged["verdict"]
    assert "at 30 days" in judged["verdict"]["sentence"]
