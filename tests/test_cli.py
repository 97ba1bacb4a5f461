from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from cli import app
from core.config import ConfigManager, TrainingConfig
from storage import DataHome

runner = CliRunner()


def test_info_reports_home_and_counts_as_json(data_home: DataHome) -> None:
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["data_home"] == str(data_home.root)
    assert facts["schema_version"] == 1
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
    doc = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    result = runner.invoke(app, ["config", "docs"])
    assert result.exit_code == 0
    assert result.output == doc, "regenerate with: trendlab config docs > docs/config.md"
