from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from cli import app
from core.market.config import TrainingConfig
from core.market.verdict import VERDICTS
from services.config_index import ConfigManager
from storage import SCHEMA_VERSION, DataHome

runner = CliRunner()


def test_info_reports_home_and_counts_as_json(data_home: DataHome) -> None:
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["data_home"] == str(data_home.root)
    assert facts["schema_version"] == SCHEMA_VERSION
    assert (facts["datasets"], facts["runs"], facts["jobs"]) == (0, 0, 0)


def test_info_on_a_corrupt_database_fails_with_the_reason(data_home: DataHome) -> None:
    data_home.database_path.write_bytes(b"garbage")
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 1
    assert "not a DuckDB database" in result.output


def test_config_show_prints_loadable_defaults() -> None:
    result = runner.invoke(app, ["config", "show", "TrainingConfig"])
    assert result.exit_code == 0
    assert TrainingConfig.from_dict(yaml.safe_load(result.output)) == TrainingConfig()


def test_config_show_docs_lists_field_meanings() -> None:
    result = runner.invoke(app, ["config", "show", "OptimizerConfig", "--docs"])
    assert "stock_tower_lr_multiplier: The stock tower learns" in result.output


def test_config_validate_names_the_bad_field(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    ConfigManager().save_config(good)
    assert runner.invoke(app, ["config", "validate", str(good)]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("dropout: 0.3", "dropout: 1.5"))
    result = runner.invoke(app, ["config", "validate", str(bad)])
    assert result.exit_code == 1
    assert "model_config.stock_tower.dropout = 1.5" in result.output


def test_unknown_config_name_is_refused() -> None:
    result = runner.invoke(app, ["config", "show", "Nope"])
    assert result.exit_code == 1
    assert "Unknown config 'Nope'" in result.output


def test_config_reference_doc_is_current() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    result = runner.invoke(app, ["config", "docs"])
    assert result.exit_code == 0
    assert result.output == doc, "regenerate with: trendlab config docs > docs/config.md"


def _dataset_tables(data_home: DataHome) -> list[str]:
    import duckdb

    with duckdb.connect(str(data_home.database_path), read_only=True) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE regexp_matches(table_name, ?)",
            ["^dataset_[0-9]+$"],
        ).fetchall()
    return [name for (name,) in rows]


def test_data_synthetic_then_list_show_and_reuse(data_home: DataHome) -> None:
    arguments = ["data", "synthetic", "small", "--tickers", "AAA,BBB", "--start", "2019-01-01"]
    result = runner.invoke(app, [*arguments, "--end", "2021-06-30", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "Stored dataset 'small'" in result.output
    again = runner.invoke(
        app,
        [
            "data",
            "synthetic",
            "copy",
            "--tickers",
            "AAA,BBB",
            "--start",
            "2019-01-01",
            "--end",
            "2021-06-30",
            "--seed",
            "3",
        ],
    )
    assert "No dataset 'copy' was created: the same data is stored as 'small'" in again.output
    listed = json.loads(runner.invoke(app, ["data", "list", "--json"]).output)
    assert [d["name"] for d in listed] == ["small"]
    shown = json.loads(runner.invoke(app, ["data", "show", "small", "--json"]).output)
    assert shown["features"] == 87 and shown["recipe"]["seed"] == 3
    assert shown["recipe"]["signal"] is True and shown["tickers"] == ["AAA", "BBB"]
    assert _dataset_tables(data_home) == ["dataset_1"]
    missing = runner.invoke(app, ["data", "show", "nope"])
    assert missing.exit_code == 1 and "known datasets: small" in missing.output


def test_failed_import_reports_the_problem_and_stores_nothing(
    data_home: DataHome, tmp_path: Path
) -> None:
    bad = tmp_path / "prices.csv"
    bad.write_text("date,ticker,open,high,low,close,volume\n2020-01-02,AAA,1,2,1,x,10\n")
    result = runner.invoke(app, ["data", "import", "mine", "--prices", str(bad)])
    assert result.exit_code == 1
    assert "prices.csv, line 2, column 'close': 'x' is not a finite number" in result.output
    assert json.loads(runner.invoke(app, ["info", "--json"]).output)["datasets"] == 0
    assert _dataset_tables(data_home) == []


def test_data_import_of_a_valid_file(data_home: DataHome, tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 320)))
    frame = pd.DataFrame(
        {
            "Date": pd.bdate_range("2020-01-01", periods=320).strftime("%Y-%m-%d"),
            "Open": close,
            "High": close * 1.01,
            "Low": close * 0.99,
            "Close": close,
            "Volume": 1000,
        }
    )
    path = tmp_path / "acme.csv"
    frame.to_csv(path, index=False)
    result = runner.invoke(app, ["data", "import", "acme", "--prices", str(path)])
    assert result.exit_code == 0, result.output
    shown = json.loads(runner.invoke(app, ["data", "show", "acme", "--json"]).output)
    assert shown["tickers"] == ["ACME"] and shown["kind"] == "import"


def test_serve_stores_the_demo_datasets_once_then_starts_pages_and_api(
    data_home: DataHome, monkeypatch
) -> None:
    import cli

    started: list[list[str]] = []
    monkeypatch.setattr(cli.os, "execv", lambda _exe, command: started.append(command))
    assert runner.invoke(app, ["serve", "--port", "8999"]).exit_code == 0
    assert runner.invoke(app, ["serve", "--port", "8999"]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["data", "list", "--json"]).output)
    kinds = {d["name"]: d["kind"] for d in listed}
    assert kinds == {"demo": "synthetic", "startups": "recsys"}, "each stored once"
    assert "--server.port=8999" in started[0] and len(started) == 2
    assert started[0][started[0].index("run") + 1].endswith("api/server.py"), "pages and /api"


def test_a_first_start_queues_one_quick_demo_training_per_kind(data_home: DataHome, monkeypatch):
    """Issue 18: a fresh server has data and, minutes later, trained models to show."""
    import cli
    from services import catalog
    from services.registry import preset_configs
    from storage import open_engine

    monkeypatch.setattr(cli.os, "execv", lambda _exe, command: None)
    first = runner.invoke(app, ["serve", "--demo-jobs"])
    assert first.exit_code == 0 and "Queued demo training job 2." in first.output
    again = runner.invoke(app, ["serve", "--demo-jobs"])
    assert "Queued demo" not in again.output, "only on the start that stored the demo data"
    engine = open_engine(data_home.database_url)
    jobs = sorted(catalog.jobs(engine=engine), key=lambda j: j.id)
    runs = [catalog.run(engine=engine, run_id=j.run_id) for j in jobs]
    engine.dispose()
    assert [(j.kind, j.status) for j in jobs] == [
        ("train_recommender", "queued"),
        ("train", "queued"),
    ]
    assert [(r.model, r.dataset) for r in runs] == [
        ("two_tower", "startups"),
        ("dual_tower", "demo"),
    ]
    assert runs[1].config["training"]["epochs"] == preset_configs("dual_tower", "quick")[1].epochs


def _tiny_configs(tmp_path: Path) -> list[str]:
    training = tmp_path / "training.yaml"
    training.write_text("epochs: 2\nbatch_size: 128\nscheduler:\n  warmup_epochs: 0\n")
    model = tmp_path / "model.yaml"
    model.write_text(
        "context_tower:\n  hidden_dims: [8]\n  embedding_dim: 4\n"
        "stock_tower:\n  hidden_dims: [8]\n  embedding_dim: 4\nhead:\n  hidden_dims: [4]\n"
    )
    return ["--config", str(training), "--model-config", str(model)]


def test_train_evaluate_predict_and_list_runs(data_home: DataHome, tmp_path: Path) -> None:
    import pandas as pd

    created = runner.invoke(
        app,
        [
            "data",
            "synthetic",
            "small",
            "--tickers",
            "AAA,BBB,CCC",
            "--start",
            "2016-01-01",
            "--end",
            "2020-12-31",
        ],
    )
    assert created.exit_code == 0, created.output
    trained = runner.invoke(
        app,
        ["train", "dual_tower", "--dataset", "small", *_tiny_configs(tmp_path), "--json", "-q"],
    )
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.output[trained.output.index("{") :])
    assert summary["run_id"] == 1 and summary["epochs"] == 2
    assert set(summary["test"]) == {"7d", "30d"} and "oracle_pearson" in summary["test"]["7d"]
    listed = json.loads(runner.invoke(app, ["runs", "list", "--json"]).output)
    assert listed[0]["status"] == "succeeded" and listed[0]["model"] == "dual_tower"
    shown = json.loads(runner.invoke(app, ["runs", "show", "1", "--json"]).output)
    kinds = {a["kind"] for a in shown["artifacts"]}
    assert {"checkpoint", "checkpoint_last", "history_plot", "summary"} <= kinds
    assert {"evaluation", "predictions"} <= kinds, "training ends with the full evaluation"
    kept = pd.read_parquet(
        next(a["path"] for a in shown["artifacts"] if a["kind"] == "predictions")
    )
    assert {"score_7d", "boosting_score_7d", "oracle_score_30d", "relevance_7d"} <= set(kept)
    assert {"context_pc1", "stock_pc2"} <= set(kept), "embedding projections for the page"
    summary_file = next(a for a in shown["artifacts"] if a["kind"] == "summary")
    assert json.loads(Path(summary_file["path"]).read_text())["model"] == "dual_tower"
    report = runner.invoke(app, ["evaluate", "1", "--json"])
    assert report.exit_code == 0, report.output
    reports = json.loads(report.output)["reports"]
    assert {"model", "majority", "momentum", "linear", "boosting", "oracle"} <= set(reports)
    assert reports["oracle"]["7d"]["vs_oracle"]["pearson"] == 1.0
    text = runner.invoke(app, ["evaluate", "1", "--walk-forward", "2"])
    assert "boosting" in text.output and "seed level" in text.output
    assert "walk-forward, 2 folds" in text.output

    from core.market.sources import build_market_dataset, synthetic_data

    rows = build_market_dataset(
        synthetic_data(["AAA"], "2019-01-01", "2020-12-31", seed=9, signal=True, horizons=[7, 30])
    ).head(5)
    features = tmp_path / "rows.csv"
    hostile = ["+SUM(1,2)", "-2+3+cmd|' /C calc'!A0", '=HYPERLINK("x")', "@A1", "AAA"]
    rows.drop(columns=["news_sentiment_mean"]).assign(ticker=hostile).to_csv(features, index=False)
    output = tmp_path / "predictions.csv"
    done = runner.invoke(app, ["predict", "1", "--input", str(features), "--output", str(output)])
    assert done.exit_code == 0, done.output
    predictions = pd.read_csv(output)
    assert len(predictions) == 5 and predictions["score_7d"].between(-1, 1).all()
    assert predictions["ticker"].tolist() == [*("'" + t for t in hostile[:4]), "AAA"], (
        "issue 41, item 3: formula cells are written as text"
    )
    assert set(predictions["class_7d"]) <= {"negative", "none", "positive"}
    bad = tmp_path / "bad.csv"
    rows.drop(columns=["rsi_14"]).to_csv(bad, index=False)
    refused = runner.invoke(app, ["predict", "1", "--input", str(bad), "--output", str(output)])
    assert refused.exit_code == 1 and "rsi_14" in refused.output
    exported = runner.invoke(app, ["export", "onnx", "1", str(tmp_path / "model.onnx")])
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "model.onnx").stat().st_size > 10_000


def test_train_refuses_unknown_model_dataset_and_bad_config(data_home, tmp_path) -> None:
    assert "known: dual_tower" in runner.invoke(app, ["train", "gpt", "--dataset", "x"]).output
    missing = runner.invoke(app, ["train", "dual_tower", "--dataset", "nope"])
    assert missing.exit_code == 1 and "No dataset named 'nope'" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_size: -1\n")
    refused = runner.invoke(app, ["train", "dual_tower", "--dataset", "x", "--config", str(bad)])
    assert refused.exit_code == 1 and "batch_size" in refused.output
    unknown = runner.invoke(app, ["train", "dual_tower", "--dataset", "x", "--baselines", "knn"])
    assert unknown.exit_code == 1 and "Unknown baseline 'knn'" in unknown.output
    half = runner.invoke(app, ["train", "dual_tower", "--dataset", "x", "--precision", "fp16"])
    assert half.exit_code == 1 and "precision = 'fp16' is invalid" in half.output


def test_bf16_on_a_device_without_bfloat16_units_is_noted(monkeypatch, capsys) -> None:
    from cli.common import note_precision

    monkeypatch.setattr("core.devices.bf16_is_native", lambda device: False)
    note_precision("bf16", "cpu")
    assert "cpu has no bfloat16 units" in capsys.readouterr().err
    note_precision("fp32", "cpu")
    assert capsys.readouterr().err == ""


def _two_tickers_and_two_epochs(dataset: str, tmp_path: Path) -> Path:
    """A synthetic market of two tickers over five years, stored as ``dataset``, and a
    training config of two quick epochs."""
    span = ["--start", "2016-01-01", "--end", "2020-12-31"]
    stored = runner.invoke(app, ["data", "synthetic", dataset, "--tickers", "AAA,BBB", *span])
    assert stored.exit_code == 0, stored.output
    quick = tmp_path / "quick.yaml"
    quick.write_text("epochs: 2\nbatch_size: 64\nscheduler:\n  warmup_epochs: 0\n")
    return quick


def test_ensemble_of_the_seed_002_models(data_home: DataHome, tmp_path: Path) -> None:
    quick = _two_tickers_and_two_epochs("small", tmp_path)
    for model in ("simple_lstm", "compact_dual_tower", "dual_tower"):
        args = [
            "train",
            model,
            "--dataset",
            "small",
            "--config",
            str(quick),
            "--baselines",
            "none",
            "-q",
        ]
        if model == "simple_lstm":
            args += ["--precision", "bf16"]  # an ensemble member trained in bf16 scores in fp32
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    report = runner.invoke(app, ["ensemble", "1", "2", "--json"])
    assert report.exit_code == 0, report.output
    reports = json.loads(report.output)["reports"]
    assert set(reports) == {"run 1 (simple_lstm)", "run 2 (compact_dual_tower)", "ensemble"}
    assert reports["ensemble"]["7d"]["rows"] == reports["run 1 (simple_lstm)"]["7d"]["rows"]
    judged = json.loads(report.output)["uncertainty"]
    assert judged["verdict"]["verdict"] in VERDICTS
    lead = judged["horizons"]["7d"]["primary"]
    assert lead["metric"] == "pearson", "two tickers: correlation"
    baselines = json.loads(report.output)["baselines"]
    rival = 0.0 if lead["baseline"] == "mean" else baselines[lead["baseline"]]["7d"]
    rival = rival if rival == 0.0 else rival["regression"]["pearson"]
    ensemble = reports["ensemble"]["7d"]["regression"]["pearson"]
    assert lead["difference"] == pytest.approx(ensemble - rival, abs=1e-9), "the ensemble's lead"
    shown = runner.invoke(app, ["ensemble", "1", "2"])
    assert "The ensemble as one model" in shown.output and "Verdict:" in shown.output
    reversed_order = runner.invoke(app, ["ensemble", "2", "1", "--json"])
    assert reversed_order.exit_code == 0, reversed_order.output
    again = json.loads(reversed_order.output)
    assert again["baselines_fit_on"] == json.loads(report.output)["baselines_fit_on"] == 2, (
        "the daily model's rows, in either order"
    )
    assert again["uncertainty"]["verdict"] == judged["verdict"]
    mixed = runner.invoke(app, ["ensemble", "1", "3"])
    assert mixed.exit_code == 1 and "same classes" in mixed.output


def test_an_experiment_over_seeds_is_judged_by_the_mean_of_its_models(
    data_home: DataHome, tmp_path: Path
) -> None:
    """`train --seeds 2`: one run per seed, their spread, and the verdict of the mean of
    their models, the same judgement `trendlab ensemble` of those runs gives."""
    quick = _two_tickers_and_two_epochs("pair", tmp_path)
    args = ["train", "compact_dual_tower", "--dataset", "pair", "--config", str(quick)]
    trained = runner.invoke(app, [*args, "--seeds", "2", "--baselines", "linear", "--json", "-q"])
    assert trained.exit_code == 0, trained.output
    found = json.loads(trained.output.strip().splitlines()[-1])
    assert [r["run_id"] for r in found["runs"]] == [1, 2]
    assert found["mean"]["run_ids"] == [1, 2]
    judged = found["mean"]["uncertainty"]
    assert judged["horizons"]["7d"]["primary"]["baseline"] in ("linear", "mean")
    assert "boosting" not in found["mean"]["reports"], "only the runs' baselines"
    same = runner.invoke(app, ["ensemble", "1", "2", "--baselines", "linear", "--json"])
    assert same.exit_code == 0, same.output
    again = json.loads(same.output)
    assert again["uncertainty"]["verdict"] == judged["verdict"], "the ensemble command's verdict"
    assert again["uncertainty"]["horizons"] == judged["horizons"]
    for horizon in ("7d", "30d"):
        assert again["reports"]["ensemble"][horizon]["regression"]["pearson"] == pytest.approx(
            found["mean"]["reports"]["ensemble"][horizon]["regression"]["pearson"], abs=1e-9
        ), "the mean the ensemble command scores"
    shown = runner.invoke(app, [*args, "--seeds", "2", "--baselines", "none", "-q"])
    assert shown.exit_code == 0, shown.output
    assert "The mean of the 2 seeds' models, judged as one" in shown.output
    assert "`trendlab ensemble 3 4 --baselines none`" in shown.output
    assert "Verdict:" in shown.output
    unknown = runner.invoke(app, ["ensemble", "1", "2", "--baselines", "ridge"])
    assert unknown.exit_code == 1 and "Unknown baseline 'ridge'" in unknown.output


def test_bundled_data_trains_and_evaluates_end_to_end(data_home: DataHome, tmp_path) -> None:
    assert runner.invoke(app, ["data", "bundled", "indices"]).exit_code == 0
    args = ["train", "dual_tower", "--dataset", "indices", *_tiny_configs(tmp_path)]
    args += ["--baselines", "majority"]
    assert runner.invoke(app, args).exit_code == 0
    report = json.loads(runner.invoke(app, ["evaluate", "1", "--json"]).output)
    assert {"model", "linear", "boosting", "majority", "momentum"} <= set(report["reports"])
    assert "oracle" not in report["reports"], "real data has no latent truth"
    assert "vs_oracle" not in report["reports"]["model"]["7d"]
    judged = report["uncertainty"]
    assert judged["primary"]["metric"] == "hedge", "relevance: judged as a hedge"
    assert judged["verdict"]["verdict"] in VERDICTS
    if judged["collapse"]["score_collapsed"]:
        assert judged["verdict"]["verdict"] == "collapsed"
    assert "spa_pvalue" in judged["horizons"]["7d"]["primary"]
    assert "market_neutral" not in report["reports"]["model"]["7d"]["finance"], "no P&L"
    tries = report["tries"]["horizons"]["7d"]
    assert "spa_pvalue" in tries and "sharpe" not in tries, "a hedge trades nothing"
    assert (
        report["tries"]["trials"] == 1 and report["evaluation_config"]["strategy"]["cost_bps"] == 10
    )
    assert "persistence" in report["reports"], "relevance is judged against persistence"
    text = runner.invoke(app, ["evaluate", "1"]).output
    assert "Primary metric: hedge variance removed" in text and "- primary: " in text
    assert "What it is for: Size a hedge" in text and "SPA p-value" in text
    assert "Sharpe" not in text, "a co-movement forecast is not shown as a trading strategy"


def test_recsys_commands_end_to_end(data_home: DataHome, tmp_path: Path) -> None:
    made = runner.invoke(
        app,
        ["recsys", "synthetic", "rs", "--users", "50", "--items", "40", "--interactions", "700"],
    )
    assert made.exit_code == 0 and "700 interactions" in made.output, made.output
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("hidden_dims: [16]\nembedding_dim: 8\nepochs: 2\n")
    trained = runner.invoke(
        app, ["recsys", "train", "--dataset", "rs", "--config", str(tiny), "--json"]
    )
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.output[trained.output.index("{") :])
    assert summary["run_id"] == 1 and set(summary["label_distribution"][0]) == {
        "label",
        "rows",
        "share",
    }
    report = json.loads(runner.invoke(app, ["recsys", "evaluate", "1", "--json"]).output)
    engines = {"two_tower", "popularity", "item_knn", "ease", "content", "bpr", "ranker"}
    assert engines == set(report["all_users"])
    for engine in engines:  # every metric of every engine with its 95 % interval
        bounds = report["intervals"]["all_users"][engine]
        figures = report["all_users"][engine]
        assert set(bounds) == {f"{m}@10" for m in ("precision", "recall", "f1", "hit_rate")} | {
            "ndcg@10",
            "map@10",
        }
        assert all(low <= figures[m] <= high for m, (low, high) in bounds.items())
    comparison = report["comparison"]
    assert comparison["best_baseline"] in engines - {"two_tower", "ranker"}
    assert comparison["verdict"] in ("beats", "no evidence", "worse")
    assert set(comparison["against"]) == engines - {"two_tower"}
    assert report["serve"]["engine"] in ("two_tower", "ranker", "ease", "item_knn", "popularity")
    assert set(report["ranker_comparison"]["against"]) == engines - {"ranker"}
    text = runner.invoke(app, ["recsys", "evaluate", "1"]).output
    assert "cold users" in text and "ndcg@10" in text and "ndcg@10 low" in text
    general = runner.invoke(app, ["evaluate", "1"])
    assert general.exit_code == 0 and general.output == text, (
        "issue 41, item 4: `trendlab evaluate` evaluates a recommender run (it said its rows "
        "were missing and advised deleting the dataset)"
    )
    assert json.loads(runner.invoke(app, ["evaluate", "1", "--json"]).output) == report
    market_only = runner.invoke(app, ["evaluate", "1", "--walk-forward", "2"])
    assert market_only.exit_code == 1 and "recsys evaluate 1" in market_only.output
    assert "missing" not in market_only.output
    assert "Verdict: " in text and f"against {comparison['best_baseline']}: " in text
    assert f"Serves warm and hot users: {report['serve']['engine']}" in text
    assert "Second stage: " in text
    answer = runner.invoke(
        app, ["recsys", "recommend", "u0001", "--limit", "4", "--filter", "type=job", "--json"]
    )
    assert answer.exit_code == 0, answer.output
    served = json.loads(answer.output)
    assert served["engine"] in {"two_tower", "ranker", "ease", "item_knn", "popularity", "content"}
    assert len(served["items"]) <= 4
    unknown = runner.invoke(app, ["recsys", "recommend", "nobody"])
    assert unknown.exit_code == 1 and "unknown user 'nobody'" in unknown.output
    bad = runner.invoke(app, ["recsys", "recommend", "u0001", "--filter", "type"])
    assert bad.exit_code == 1 and "field=value" in bad.output


def test_recsys_import_then_train_on_another_domain(data_home: DataHome, tmp_path: Path) -> None:
    from core.recsys.synthetic import RecsysSpec, generate_recsys
    from storage import open_engine
    from storage.repository import count_rows, session_scope

    data = generate_recsys(RecsysSpec(users=40, items=30, interactions=500, seed=8))
    events = tmp_path / "events.csv"
    data.interactions.rename(columns={"user_id": "Member", "interaction": "Event"}).to_csv(
        events, index=False
    )
    items = tmp_path / "items.csv"
    data.items[["item_id", "sector", "team_size"]].to_csv(items, index=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,interaction,timestamp\nu1,s1,share,2024-01-01\n")
    refused = runner.invoke(app, ["recsys", "import", "x", "--interactions", str(bad)])
    assert refused.exit_code == 1 and "bad.csv, line 2, column 'interaction'" in refused.output
    engine = open_engine(data_home.database_url)
    with session_scope(engine) as session:
        assert count_rows(session=session)["datasets"] == 0, "nothing stored"
    engine.dispose()
    args = ["recsys", "import", "clubs", "--interactions", str(events), "--items", str(items)]
    args += ["--map", "user_id=Member,interaction=Event"]
    imported = runner.invoke(app, args)
    assert imported.exit_code == 0, imported.output
    assert "40 users, 30 items, 500 interactions" in imported.output
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("hidden_dims: [16]\nembedding_dim: 8\nepochs: 2\n")
    trained = runner.invoke(app, ["recsys", "train", "--dataset", "clubs", "--config", str(tiny)])
    assert trained.exit_code == 0, trained.output
    assert "two_tower" in trained.output and "item_knn" in trained.output


def test_the_no_signal_control_trains_and_evaluates(data_home: DataHome) -> None:
    """Issue 13, item 15: with no planted signal the oracle is constant, and the leak check's
    fit of the label on it used to end the run failed ("SVD did not converge")."""
    made = runner.invoke(
        app,
        [
            *("data", "synthetic", "ctl", "--no-signal", "--seed", "5", "--tickers", "AAA,BBB"),
            *("--start", "2016-01-01", "--end", "2019-12-31"),
        ],
    )
    assert made.exit_code == 0, made.output
    trained = runner.invoke(
        app, ["train", "dual_tower", "--dataset", "ctl", "--epochs", "2", "--json", "-q"]
    )
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.output[trained.output.index("{") :])
    assert "evaluation_error" not in summary
    assert len(summary["test"]) == 2, "both horizons were evaluated"


def test_price_only_data_trains_the_dual_tower_on_every_trend_row(
    data_home: DataHome, tmp_path: Path
) -> None:
    """Issue 16: prices without any context (dates past the bundled macro series) have no
    relevance labels. Training says so before it starts and refuses; with the trend targets
    the dual tower trains on every labelled row."""
    from core.market.sources import synthetic_data

    prices = synthetic_data(
        ["AAA", "BBB", "CCC"], "2020-01-01", "2023-12-31", seed=4, signal=False, horizons=[7, 30]
    ).prices
    path = tmp_path / "prices.csv"
    prices[["date", "ticker", "open", "high", "low", "close", "volume"]].to_csv(path, index=False)
    imported = runner.invoke(app, ["data", "import", "plain", "--prices", str(path)])
    assert imported.exit_code == 0, imported.output

    refused = runner.invoke(app, ["train", "dual_tower", "--dataset", "plain", "--epochs", "1"])
    assert refused.exit_code == 1
    assert "relevance needs context:" in refused.output and "rows have none" in refused.output
    assert "Try the dual tower's target: trend" in refused.output

    command = ["train", "dual_tower", "--dataset", "plain", "--target", "trend"]
    trained = runner.invoke(app, [*command, "--epochs", "1", "--baselines", "majority", "-q"])
    assert trained.exit_code == 0, trained.output
    counted = re.search(
        r"Labelled rows: ([\d,]+) of ([\d,]+) rows have every trend", trained.output
    )
    assert counted, trained.output
    labelled, rows = (int(g.replace(",", "")) for g in counted.groups())
    assert labelled > 0.97 * rows, "only each ticker's last 30 days lack a forward window"

    from core.market.config import DataConfig
    from core.market.models import model_spec
    from core.market.training import build_loaders
    from services.market.evaluation import run_dataset
    from storage import open_engine

    engine = open_engine(data_home.database_url)
    frame = run_dataset(engine=engine, run_id=1)
    engine.dispose()
    spec = model_spec("dual_tower", targets="trend")
    training = spec.training_config_class()
    loaders = build_loaders(spec, frame, data=DataConfig(), training=training, seed=0)
    used = sum(part.num_rows for part in loaders)
    assert used > 0.9 * labelled, (used, labelled)


def test_train_json_keeps_stdout_pure_json_and_shows_progress_on_stderr(
    data_home: DataHome,
) -> None:
    """Issue 18: with --json, nothing printed for minutes, then the JSON; now a progress bar
    and epoch lines go to stderr while stdout holds only the JSON. --quiet silences them."""
    dates = ["--start", "2016-01-01", "--end", "2019-12-31"]
    made = runner.invoke(app, ["data", "synthetic", "s", "--tickers", "AAA,BBB", *dates])
    assert made.exit_code == 0, made.output
    assert "Building features and labels" in made.stderr and "Built and stored in" in made.stderr
    command = ["train", "compact_dual_tower", "--dataset", "s", "--epochs", "2"]
    trained = runner.invoke(app, [*command, "--baselines", "majority", "--json"])
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.stdout)  # the whole of stdout parses
    assert "Estimated time:" in trained.stderr, "measured before the first step"
    assert summary["run_id"] == 1 and summary["epochs"] == 2
    assert "epoch   1/2" in trained.stderr and "epoch   2/2" in trained.stderr
    assert "batch" in trained.stderr, "the progress bar (batches, rate, ETA)"
    quiet = runner.invoke(app, [*command, "--baselines", "majority", "--json", "--quiet"])
    assert quiet.exit_code == 0 and "epoch" not in quiet.stderr
    assert json.loads(quiet.stdout)["run_id"] == 2


@pytest.mark.slow
def test_evaluate_a_sweep_judges_its_trials_together(swept, monkeypatch) -> None:
    """Issue 22: `trendlab evaluate --sweep S --json` carries the verdict over the tries, and
    per horizon the SPA p-value, the highest raw Sharpe beside its deflated Sharpe, the PBO."""
    _, home, result = swept
    monkeypatch.setenv("TRENDLAB_HOME", str(home.root))
    shown = runner.invoke(app, ["evaluate", "--sweep", str(result.sweep_id), "--json"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["trials"] >= 2 and report["sweep_id"] == result.sweep_id
    assert report["verdict"]["verdict"] in VERDICTS
    assert f"the best of {report['trials']} trials" in report["verdict"]["sentence"]
    for section in report["horizons"].values():
        assert 0 <= section["spa_pvalue"] <= 1 and 0 <= section["deflated_sharpe"] <= 1
        assert section["pbo"]["splits"] > 0
        assert section["expected_max_sharpe"] > 0
    text = runner.invoke(app, ["evaluate", "--sweep", str(result.sweep_id)]).output
    assert "Verdict: " in text and "deflated Sharpe" in text and "PBO" in text
    missing = runner.invoke(app, ["evaluate"])
    assert missing.exit_code == 1 and "--sweep" in missing.output


def test_train_trains_the_recommender_named_in_the_registry(data_home: DataHome) -> None:
    """`trendlab train two_tower` is `trendlab recsys train`: the run is listed; options
    only market models have are refused by name."""
    made = runner.invoke(
        app, ["recsys", "synthetic", "startups", "--users", "50", "--interactions", "700"]
    )
    assert made.exit_code == 0, made.output
    trained = runner.invoke(app, ["train", "two_tower", "--dataset", "startups", "--epochs", "2"])
    assert trained.exit_code == 0, trained.output
    assert "Serves warm and hot users:" in trained.output, trained.output
    listed = json.loads(runner.invoke(app, ["runs", "list", "--json"]).output)
    assert [(run["model"], run["status"]) for run in listed] == [("two_tower", "succeeded")]
    refused = runner.invoke(
        app, ["train", "two_tower", "--dataset", "startups", "--seeds", "2", "--target", "trend"]
    )
    assert refused.exit_code != 0 and "--target, --seeds: not options" in refused.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal needs a machine without CUDA")
def test_device_cuda_without_a_gpu_stops_before_any_work(data_home: DataHome) -> None:
    for command in (
        ["train", "dual_tower", "--dataset", "missing", "--device", "cuda"],
        ["train", "two_tower", "--dataset", "missing", "--device", "cuda"],
        ["recsys", "train", "--dataset", "missing", "--device", "cuda"],
    ):
        refused = runner.invoke(app, command)
        assert refused.exit_code == 1, refused.output
        assert "no CUDA GPU" in refused.output and "missing" not in refused.output, command
    assert json.loads(runner.invoke(app, ["runs", "list", "--json"]).output) == []


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/trendlab.duckdb")


def _fatal_no_space(*args: object, **kwargs: object) -> None:
    import duckdb
    from sqlalchemy.exc import DatabaseError

    message = 'Failed to create checkpoint: Could not write file "x": No space left on device'
    raise DatabaseError("COMMIT", {}, duckdb.FatalException(f"FATAL Error: {message}"))


def test_a_full_disk_is_one_sentence_for_data_synthetic_and_serve(
    data_home: DataHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 41, item 7: on a full disk `data synthetic` printed a 224-line traceback and
    `serve` a DuckDB FatalException traceback."""
    import cli

    monkeypatch.setattr("services.datasets.store_dataset", _no_space)
    built = runner.invoke(app, ["data", "synthetic", "m", "--tickers", "AAA"])
    monkeypatch.setattr("services.demo.store_demo_datasets", _fatal_no_space)
    monkeypatch.setattr(cli.os, "execv", lambda *args: pytest.fail("the server started"))
    served = runner.invoke(app, ["serve"])
    for result in (built, served):
        assert result.exit_code == 1
        failure = result.output.splitlines()[-1]
        assert failure.startswith("No space left on the disk of the data home")
        assert str(data_home.root) in failure and "Traceback" not in result.output
    assert runner.invoke(app, ["data", "list"]).exit_code == 0, "the database still opens"


def test_a_full_disk_anywhere_in_a_command_is_one_sentence(data_home: DataHome) -> None:
    """Outside the database too (here stdout redirected to a full disk): the entry point
    prints the sentence instead of a traceback."""
    full = (
        "import errno, os, typer\n"
        "def full(*args, **kwargs):\n"
        "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
        "typer.echo = full\n"
        "import cli\n"
        "cli.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", full, "config", "show", "OptimizerConfig"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"No space left on the disk of the data home ({data_home.root}): free some space, or "
        "set TRENDLAB_HOME to a folder on a larger disk, and run the command again."
    ]
