"""Issue 22: honest verdicts on the bundled real S&P 500 / NASDAQ data. A constant predictor
and a model trained on shuffled labels get "no evidence" or "collapsed", never "beats".
Issue 36: each target is judged by its use; a relevance (co-movement) run by the variance a
forecast-sized hedge removes, with no profit and loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.market.evaluation import evaluate_model, score_report
from core.market.loaders import create_data_loaders
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
    assert declare_primary(EvaluationConfig(), wide, kind="return")["metric"] == "rank_ic"
    auto = declare_primary(EvaluationConfig(), narrow, kind="return")
    assert auto["metric"] == "pearson" and "2 tickers" in auto["reason"]
    assert (
        declare_primary(EvaluationConfig(primary="rank_ic"), narrow, kind="return")["metric"]
        == "rank_ic"
    )


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
def test_on_the_planted_market_spa_finds_a_real_hedge_and_the_tries_verdict_says_beats() -> None:
    """A positive control for the SPA test and the tries verdict that no CPU's rounding can
    move: on the planted market (5 tickers, 2016-2020) the latent truth itself, scored as a
    run against the majority class, momentum and the constant mean, has an SPA p-value
    below 0.05 on the hedge it sizes, and the verdict says the run beats them. (A tiny dual
    tower trained here read an SPA p-value of 0.020 on correlation under the rules before
    issue 36; as a hedge it removes too little to show it, and a trained model's figure near
    0.05 depends on the machine's floating-point path: issue 41. Trained models' figures are
    in the benches, ``bench.planted_verdict`` and ``bench.market_universe``.)"""
    from core.market.baselines import oracle_classes
    from core.market.config import DataConfig
    from core.market.sources import synthetic_data
    from core.market.tries import tries_report

    tickers = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    data = synthetic_data(
        tickers, "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    frame = build_market_dataset(data, DataConfig())
    spec = model_spec("dual_tower")
    loaders = create_data_loaders(frame, targets="relevance", config=DataConfig())
    rivals = baseline_predictions(spec, frame, loaders, names=("majority", "momentum"))
    truth = loaders.test.meta[["date", "ticker"]].merge(frame, on=["date", "ticker"])
    oracle = truth[["date", "ticker"]].copy()
    for h in (7, 30):
        oracle[f"score_{h}d"] = truth[f"oracle_relevance_{h}d"].to_numpy()
        oracle[f"class_{h}d"] = oracle_classes(spec, oracle[f"score_{h}d"].to_numpy())
    rows = outcomes(spec, frame, oracle)
    primary = declare_primary(EvaluationConfig(), rows, kind=spec.target.kind)
    assert primary["metric"] == "hedge"
    tries = tries_report(spec, {"truth": oracle}, rivals, rows, primary=primary)
    assert min(s["spa_pvalue"] for s in tries["horizons"].values()) < 0.05, tries["horizons"]
    assert tries["verdict"]["verdict"] == "beats", tries["verdict"]
    assert tries["verdict"]["sentence"].startswith("the run beats the baseline")
    assert all("sharpe" not in s for s in tries["horizons"].values()), "a hedge trades nothing"


@pytest.mark.slow
def test_on_the_default_planted_market_the_experiment_is_judged_as_one_hedge() -> None:
    """Issue 22's positive control, restated for issues 36 and 41: the demo's planted market
    (7 tickers, 2015-2024, seed 42) and the dual tower as shipped (input gates on) trained with
    seeds 42, 43 and 44, what `trendlab train dual_tower --seeds 3` runs; the mean of the
    three models judged as one. Relevance is a co-movement forecast, so it is judged by the
    variance a hedge sized by it removes, against persistence among the baselines.

    Asserted here is what holds on every CPU: the judgement's shape, the 30-day horizon not
    judged (about 375 test dates in blocks of 43: fewer than 10 independent periods), and
    figures far from any bar: the mean's 7-day hedge removes variance where persistence
    (the trailing realised relevance) adds it (+0.038 against -0.172 on the machine that
    wrote this), and it stays close to the oracle's. Whether the mean "beats" boosting is a
    figure near the bar (lead +0.008, lower bound +0.001, SPA 0.028 here; a clean clone on
    another machine of the same kind trained different weights and read a 30-day SPA of 0.066
    where this one read 0.033 under the old rule), so it lives in the bench:
    `python -m bench.planted_verdict --seeds 42,43,44 --ensemble --no-mlp` (docs/models.md).
    Early stopping waits 6 epochs rather than 15 to halve the time."""
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
    assert judged["primary"]["metric"] == "hedge" and judged["primary"]["use"]["name"] == "hedge"
    assert not judged["collapse"]["score_collapsed"], judged["collapse"]
    assert judged["verdict"]["verdict"] in ("beats", "no evidence"), judged["verdict"]
    assert not judged["horizons"]["30d"]["judged"], "too few independent periods at 30 days"
    assert "at 30 days too few independent periods" in judged["verdict"]["sentence"]
    reports = mean.report["reports"]
    hedge = {name: reports[name]["7d"]["hedge"] for name in ("model", "persistence", "oracle")}
    assert hedge["model"] > 0.02 and hedge["persistence"] < -0.1, hedge
    assert hedge["model"] > 0.6 * hedge["oracle"], hedge
    assert all("market_neutral" not in r["7d"]["finance"] for r in reports.values())
