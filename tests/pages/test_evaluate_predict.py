"""Evaluate and Predict on real trained runs: what they draw, what the user can change, and
how they treat a damaged checkpoint."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from storage import DataHome, open_engine
from storage.db import StorageError
from tests.pages.conftest import store_small_dataset, train_tiny

PAGES = Path(__file__).resolve().parents[2] / "pages"


def _open(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _predictors(at: AppTest):
    """The evaluated run's metric table (the runs table comes first on the page)."""
    return next(d.value for d in at.dataframe if "predictor" in d.value.columns)


def _charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def test_evaluate_shows_the_model_beside_its_baselines(trained: DataHome) -> None:
    at = _open("evaluate.py", run="1")
    assert at.subheader[0].value.startswith("Run 1: dual_tower")
    table = _predictors(at)
    assert list(table["predictor"]) == ["model", "majority", "momentum", "linear", "oracle"]
    every = next(d.value for d in at.dataframe if "corr vs oracle" in d.value.columns)
    oracle = every.set_index("predictor").loc["oracle"]
    assert oracle["corr vs oracle"] == "+1.000" and oracle["seed level"] == "excellent"
    # confusion 7d + 30d, scatter, IC, group importance, embedding; no strategy: relevance
    # is a co-movement forecast, used to size hedges (issue 36). Two epochs leave every input
    # gate near its start at 1: said in a line, not charted (issue 39)
    assert len(_charts(at)) == 6
    assert any(c.value.startswith("Input gates: all") for c in at.caption)
    assert at.get("download_button"), "the predictions download"
    at.radio[0].set_value("30d").run()
    assert _predictors(at).loc[0, "corr"] != table.loc[0, "corr"]


def test_evaluate_opens_with_a_summary_in_words_and_shows_every_figures_uncertainty(
    trained: DataHome,
) -> None:
    """Issue 16: intervals, the verdict against the best baseline, the IC's t-statistic."""
    at = _open("evaluate.py", run="1")
    summary = next(e.value for e in [*at.info, *at.warning] if "trained" in e.value)
    assert summary.startswith("**Run 1** trained **dual_tower** on **small**")
    assert "95% interval" in summary and "**Verdict:**" in summary
    table = _predictors(at)
    assert not any(c.endswith("95%") for c in table.columns), "intervals sit in their cells"
    for column in ("corr", "rank IC"):  # "+0.123 (+0.045..+0.201)"
        figure, interval = table.loc[0, column].rstrip(")").split(" (")
        low, high = (float(x) for x in interval.split(".."))
        assert low <= float(figure) <= high
    comparisons = next(m.value for m in at.markdown if "Against the best baseline" in m.value)
    assert comparisons.count("- ") == 6, "one line per headline metric"
    lines = [line for line in comparisons.splitlines() if line.startswith("- ")]
    assert lines[0].startswith("- primary: ") and "hedge variance removed" in lines[0]
    assert all(line.startswith("- secondary: ") for line in lines[1:])
    assert any("Newey-West t" in c.value for c in at.caption)


def test_a_relevance_run_is_judged_as_a_hedge_with_no_profit_and_loss(trained: DataHome) -> None:
    """Issue 36: a co-movement forecast is judged by the variance a hedge sized by it removes;
    the page states that use and shows no trading table or strategy curve."""
    at = _open("evaluate.py", run="1")
    summary = next(e.value for e in [*at.info, *at.warning] if "trained" in e.value)
    assert "**hedge variance removed**, the primary metric" in summary
    assert "**What it is for:** Size a hedge" in summary
    assert "Hedging with it at 7 days" in summary and "Sharpe" not in summary
    assert not any(n.label.startswith("Trading cost") for n in at.number_input)
    assert not any("portfolio" in d.value.columns for d in at.dataframe)
    assert any("No trading table is shown" in c.value for c in at.caption)


def test_evaluate_states_the_primary_metric_and_the_portfolio_of_its_use_at_a_chosen_cost(
    trained: DataHome,
) -> None:
    """Issues 22 and 36: the verdict rests on a declared primary metric, and the trading
    figures are those of the portfolio that trades what it measures: with three tickers, the
    pooled correlation beside each ticker traded by its own score, after a cost the user
    sets."""
    at = _open("evaluate.py", run="2")
    summary = next(e.value for e in [*at.info, *at.warning] if "trained" in e.value)
    assert "**correlation**, the primary metric" in summary
    assert "fewer than 20 for a cross-section" in summary
    # 23 weekly test dates are fewer than 10 independent blocks at either horizon
    assert "too few independent periods" in summary and "SPA p-value" not in summary
    assert "`trendlab evaluate 2 --walk-forward 5`" in summary, "where it can be judged"
    assert "each ticker long or short by its own score" in summary
    assert "market-neutral" not in summary, "no cross-sectional portfolio beside a pooled metric"
    verdict = summary.split("**Verdict:**")[1]
    assert verdict.strip().startswith(("not judged", "collapsed: no skill")), verdict
    trading = next(d.value for d in at.dataframe if "portfolio" in d.value.columns)
    assert set(trading["portfolio"]) == {"time-series"}
    majority = trading[trading["predictor"] == "majority"]
    assert majority["Sharpe (95% interval)"].str.startswith("0.00").all()
    assert (majority["net return"] == 0).all()
    assert list(trading.columns[:4]) == ["predictor", "portfolio", "net return", "gross return"]
    model = trading[trading["predictor"] == "model"]
    cost = next(n for n in at.number_input if n.label.startswith("Trading cost"))
    assert cost.value == 10.0, "the default is stated and used"
    cost.set_value(20.0).run()
    assert not at.exception, at.exception
    dearer = next(d.value for d in at.dataframe if "portfolio" in d.value.columns)
    dearer = dearer[dearer["predictor"] == "model"]
    before, after = model.iloc[0], dearer.iloc[0]
    added = 0.001 * before["daily turnover"] * before["days"]  # 10 bp more on every unit traded
    assert after["net return"] == pytest.approx(before["net return"] - added, abs=1e-9)
    assert after["gross return"] == pytest.approx(before["gross return"])


def test_evaluate_draws_attention_for_an_lstm_and_compares_runs(trained: DataHome) -> None:
    at = _open("evaluate.py", run="2")
    assert at.subheader[0].value.startswith("Run 2: lstm_attention")
    assert len(_charts(at)) == 7, "confusion x2, scatter, IC, strategy, attention heatmap + mean"
    said = [w.value for w in at.warning] + [c.value for c in at.caption]
    assert any(
        text.startswith(("Attention is uniform within noise", "Attention departs from uniform"))
        for text in said
    ), "issue 39: attention is read against uniform"
    heatmap = next(c for c in _charts(at) if "white: uniform" in c.proto.spec)
    assert '"cmid"' in heatmap.proto.spec, "colours diverge from uniform"
    at.multiselect[0].set_value([1, 2]).run()
    assert not at.exception, at.exception
    marked = [w.value for w in at.warning if "Different targets, not comparable" in w.value]
    assert marked and "run 1 predicts relevance, run 2 predicts trend" in marked[0], (
        "issue 39: a trend run beside a relevance run is marked"
    )
    assert any(
        "No day-by-day comparison: the runs predict different targets" in i.value for i in at.info
    )
    overview = at.dataframe[-1].value
    assert list(overview["run"]) == [1, 2] and set(overview["model"]) == {
        "dual_tower",
        "lstm_attention",
    }
    assert "7d pearson" in overview.columns and "training.batch_size" in overview.columns
    differ = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert list(differ.columns) == ["setting", "run 1", "run 2"]
    assert (differ["run 1"] != differ["run 2"]).all(), "only the settings that differ"
    assert "training.sequence.sequence_length" in set(differ["setting"]), "the LSTM's own"
    judged = overview.dropna(subset=["7d pearson_low"])  # run 2: too few periods to judge
    assert list(judged["run"]) == [1]
    assert (judged["7d pearson_low"] <= judged["7d pearson"]).all()
    assert (judged["7d pearson"] <= judged["7d pearson_high"]).all()
    bars = next(c for c in _charts(at) if "Test 7d pearson" in c.proto.spec)
    assert "with 95% intervals" in bars.proto.spec, "comparisons carry their uncertainty"
    assert "Not comparable across targets" in bars.proto.spec
    assert '"type":"category"' in bars.proto.spec.replace(" ", ""), "runs are categories"


def test_predict_slider_moves_the_score(trained: DataHome) -> None:
    at = _open("predict.py", run="1")
    before = [m.value for m in at.metric]
    assert len(before) == 2 and not any(m.delta for m in at.metric), "unchanged row"
    slider = next(s for s in at.slider if s.label == "news_sentiment_mean")
    slider.set_value(slider.max if slider.value < 0 else slider.min).run()
    assert not at.exception, at.exception
    after = [m.value for m in at.metric]
    assert after != before
    assert any(m.delta.endswith("vs the row") for m in at.metric), "the change is shown"
    at.checkbox[0].check().run()  # news unknown: the sliders are disabled, the score moves
    assert next(s for s in at.slider if s.label == "news_sentiment_mean").disabled


def test_predict_shows_the_attention_of_an_lstm(trained: DataHome) -> None:
    at = _open("predict.py", run="2")
    assert at.subheader[0].value.startswith("lstm_attention on")
    assert len(_charts(at)) == 3, "probabilities 7d and 30d, and the attention over the window"


def test_batch_prediction_scores_a_csv_and_names_a_bad_one(trained: DataHome) -> None:
    engine = open_engine(trained.database_url)
    from services.market.evaluation import run_dataset

    rows = run_dataset(engine=engine, run_id=1).tail(4)
    engine.dispose()
    at = _open("predict.py", run="1")
    at.file_uploader[0].upload("rows.csv", rows.to_csv(index=False).encode(), "text/csv").run()
    assert not at.exception, at.exception
    scored = at.dataframe[-1].value
    assert len(scored) == 4 and scored["score_7d"].between(-1, 1).all()
    at = _open("predict.py", run="1")
    bad = rows.drop(columns=["rsi_14"]).to_csv(index=False).encode()
    at.file_uploader[0].upload("bad.csv", bad, "text/csv").run()
    assert any("bad.csv" in e.value and "rsi_14" in e.value for e in at.error)


def test_a_damaged_checkpoint_is_flagged(data_home: DataHome) -> None:
    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    engine.dispose()
    checkpoint = data_home.checkpoints / f"run_{run_id}" / "best.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    evaluate = _open("evaluate.py")
    assert any("not the file training wrote" in w.value for w in evaluate.warning)
    predict = _open("predict.py")
    assert "checkpoint problem" in predict.selectbox[0].format_func(run_id)
    assert any("not the file training wrote" in e.value for e in predict.error)
    checkpoint.unlink()
    missing = _open("predict.py").error
    assert any(f"checkpoints/run_{run_id}/best.pt is missing" in e.value for e in missing)
    said = [e.value for e in [*evaluate.warning, *predict.error, *missing]]
    assert not [e for e in said if str(data_home.root) in e], "issue 41, item 11: no server paths"


def test_predict_stops_serving_a_run_whose_checkpoint_was_truncated_after_loading(
    data_home: DataHome,
) -> None:
    """Issue 23, item 9: the page cached the loaded model by run id, so a checkpoint
    truncated after the first visit kept being served (the API said 409) until a restart."""
    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    engine.dispose()
    first = _open("predict.py")
    assert not first.error, "the intact run loads and is cached"
    checkpoint = data_home.checkpoints / f"run_{run_id}" / "best.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    again = _open("predict.py")
    assert any("not the file training wrote" in e.value for e in again.error)
    assert not again.tabs, "nothing is scored with the cached model"


def test_requests_share_one_predictor_until_the_checkpoint_changes(data_home: DataHome) -> None:
    """The API and pages build a run's Predictor once per checked checkpoint (under load
    every /api/predict loaded the checkpoint again); altered bytes are refused, never
    served from memory."""
    from services.market.evaluation import run_predictor

    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    first = run_predictor(engine=engine, run_id=run_id)
    assert run_predictor(engine=engine, run_id=run_id) is first
    checkpoint = data_home.checkpoints / f"run_{run_id}" / "best.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    with pytest.raises(StorageError, match="not the file training wrote"):
        run_predictor(engine=engine, run_id=run_id)
    engine.dispose()


def test_read_only_evaluate_never_computes_and_stores_on_view(
    data_home: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23, item 11: with a run's evaluation.json missing, a read-only Evaluate page
    re-evaluated the run, rewrote its files and added artifact rows."""
    from storage.repository import list_artifacts, session_scope

    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    folder = data_home.checkpoints / f"run_{run_id}"
    (folder / "evaluation.json").unlink()
    with session_scope(engine) as session:
        before = len(list_artifacts(session=session, run_id=run_id))
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    at = _open("evaluate.py")
    assert any("not evaluated yet" in e.value for e in at.error), [e.value for e in at.error]
    assert not (folder / "evaluation.json").exists(), "nothing written on view"
    with session_scope(engine) as session:
        assert len(list_artifacts(session=session, run_id=run_id)) == before
    engine.dispose()


def test_read_only_evaluate_of_a_stored_run_shows_everything_and_computes_nothing(
    data_home: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 37: the evaluation stored when training ended is read back: no model or
    baseline is fitted or run, and no file or row of the data home changes."""
    from services.market import evaluation as market_evaluation
    from storage.repository import list_artifacts, session_scope

    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    engine.dispose()

    def files() -> dict[str, tuple[int, int]]:
        return {
            str(p): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in data_home.root.rglob("*")
            if p.is_file() and p.suffix != ".wal"
        }

    def refuse(*_, **__):
        raise AssertionError("computed on view")

    before = files()
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    monkeypatch.setattr(market_evaluation, "evaluate_model", refuse)
    monkeypatch.setattr(market_evaluation, "judge_predictions", refuse)
    monkeypatch.setattr("core.market.predictions._fit_baselines", refuse)
    at = _open("evaluate.py", run=str(run_id))
    assert not at.error, [e.value for e in at.error]
    summary = next(e.value for e in [*at.info, *at.warning] if "trained" in e.value)
    assert "**Verdict:**" in summary
    table = _predictors(at)
    assert {"model", "majority", "linear"} <= set(table["predictor"])
    assert files() == before, "nothing written on view"
    engine = open_engine(data_home.database_url)
    with session_scope(engine) as session:
        kinds = [a.kind for a in list_artifacts(session=session, run_id=run_id)]
    assert kinds.count("evaluation") == 1
    engine.dispose()


def test_evaluations_of_older_runs_are_computed_once_and_kept(data_home: DataHome) -> None:
    from services.market.evaluation import load_evaluation
    from storage.repository import list_artifacts, session_scope

    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    folder = data_home.checkpoints / f"run_{run_id}"
    kept = pd.read_parquet(folder / "test_predictions.parquet")
    (folder / "test_predictions.parquet").unlink()
    (folder / "evaluation.json").unlink()
    evaluation = load_evaluation(engine=engine, run_id=run_id)
    pd.testing.assert_frame_equal(
        evaluation.predictions[["date", "ticker", "score_7d"]],
        kept[["date", "ticker", "score_7d"]],
    )
    assert (folder / "evaluation.json").exists()
    with session_scope(engine) as session:
        kinds = [a.kind for a in list_artifacts(session=session, run_id=run_id)]
    assert kinds.count("evaluation") == 2  # the recomputed file is recorded again
    engine.dispose()


def test_read_only_mode_keeps_what_if_and_hides_batch_uploads(trained, monkeypatch) -> None:
    monkeypatch.setenv("TRENDLAB_READ_ONLY", "1")
    at = _open("predict.py", run="1")
    assert len(at.metric) == 2, "what-if scores still work"
    assert not at.get("file_uploader")
    assert any("uploading rows to score" in i.value for i in at.info)


@pytest.mark.parametrize("page", ["predict.py", "evaluate.py"])
def test_the_pages_list_the_runs_of_the_models_the_registry_calls_market_models(
    trained: DataHome, page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 is a dual tower, run 2 an attention LSTM: both listed while the registry says
    both are market models, only run 1 once it says the LSTM is not."""
    from services import registry

    def listed() -> set[str]:
        at = _open(page)
        picker = at.selectbox[0] if page == "predict.py" else at.multiselect[0]
        return {" · ".join(label.split(" · ")[:2]) for label in picker.options}

    assert listed() == {"run 1 · dual_tower", "run 2 · lstm_attention"}
    market_only = {k: v for k, v in registry.TRAINABLE.items() if k != "lstm_attention"}
    monkeypatch.setattr(registry, "TRAINABLE", market_only)
    assert listed() == {"run 1 · dual_tower"}


def _without_its_dataset(data_home: DataHome, gone: str) -> int:
    """A trained run whose dataset's rows were dropped (``gone="rows"``) or whose dataset is
    no longer registered at all (``gone="dataset"``)."""
    from storage.repository import get_dataset, session_scope
    from storage.tables import drop_tables

    engine = open_engine(data_home.database_url)
    store_small_dataset(engine)
    run_id = train_tiny(engine, data_home, "dual_tower")
    with session_scope(engine) as session:
        dataset = get_dataset(session=session, name="small")
        drop_tables(session=session, tables=[dataset.table_name])
        if gone == "dataset":
            session.delete(dataset)
    engine.dispose()
    return run_id


@pytest.mark.parametrize("gone", ["rows", "dataset"])
def test_a_run_whose_dataset_is_gone_is_one_sentence_on_evaluate_and_predict(
    data_home: DataHome, gone: str
) -> None:
    """Issue 41, item 6: /evaluate?run=1 and /predict?run=1 showed a StorageError exception
    (pages/following.py -> services/market/forecasts.py; pages/predict.py). Evaluate reads the
    evaluation stored with the run, so dropped rows leave it whole."""
    run_id = _without_its_dataset(data_home, gone)
    evaluate, predict = _open("evaluate.py", run=str(run_id)), _open("predict.py", run=str(run_id))
    assert evaluate.subheader[0].value.startswith(f"Run {run_id}: dual_tower")
    assert not evaluate.error if gone == "rows" else evaluate.error
    said = [e.value for e in [*evaluate.error, *predict.error]]
    assert said and all(e.rstrip(".").count(". ") == 0 and "dataset" in e.lower() for e in said)
    assert predict.tabs, "batch scoring and the stored forecasts are still there"


def test_a_collapsed_class_head_is_flagged_on_evaluate_and_home(
    trained: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 39: a 7-day class head predicting one class on every row went unflagged. The
    check covers every head; a class head alone collapsed is a warning on Evaluate that
    names it, and the runs table ticks the run."""
    import copy
    from dataclasses import replace

    import numpy as np
    import streamlit as st

    from core.market.models import model_spec
    from core.market.verdict import collapse_check
    from services.market import evaluation as market_evaluation

    spec = model_spec("dual_tower")
    rng = np.random.default_rng(0)
    score_column, class_column = spec.target.columns(7)
    scored = pd.DataFrame(
        {
            "model_score_7d": rng.normal(size=300),
            "model_class_7d": np.zeros(300, dtype=int),
            score_column: rng.normal(size=300),
            class_column: rng.integers(0, 3, 300),
        }
    )
    collapse = collapse_check(scored, spec, [7])
    assert collapse["collapsed"] and not collapse["score_collapsed"]
    assert set(collapse["heads"]) == {"class_7d"}
    real = market_evaluation.load_evaluation

    def collapsed(*, engine, run_id):
        found = real(engine=engine, run_id=run_id)
        report = copy.deepcopy(found.report)
        report["uncertainty"]["collapse"] = collapse
        return replace(found, report=report)

    st.cache_resource.clear()
    monkeypatch.setattr(market_evaluation, "load_evaluation", collapsed)
    at = _open("evaluate.py", run="1")
    flagged = [w.value for w in at.warning if "**Collapsed head:**" in w.value]
    assert flagged and f"the 7-day class head predicts '{spec.target.class_names[0]}'" in flagged[0]
    st.cache_resource.clear()

    from services.catalog import RunInfo
    from services.runs_table import runs_table

    engine = open_engine(trained.database_url)
    try:
        from services import catalog

        run = catalog.run(engine=engine, run_id=1)
        marked = replace(run, summary={**run.summary, "collapsed": True})
        table = runs_table(engine=engine, runs=[marked])
    finally:
        engine.dispose()
    assert isinstance(marked, RunInfo) and bool(table.loc[0, "collapsed"])
