"""Each seed's quick start in examples/ runs end to end with a tiny configuration."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from core.market.config import DualTowerModelConfig
from core.market.lstm_config import LSTMModelConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dual_tower_quickstart(capsys) -> None:
    tiny = DualTowerModelConfig.from_dict(
        {"context_tower": {"hidden_dims": [8]}, "stock_tower": {"hidden_dims": [8]}},
        partial=True,
    )
    report = load("dual_tower_quickstart").main(tickers=3, epochs=2, model_config=tiny)
    assert set(report) == {"7d", "30d"} and "vs_oracle" in report["7d"]
    assert "7-day relevance:" in capsys.readouterr().out


def test_lstm_quickstart(capsys) -> None:
    tiny = LSTMModelConfig(
        hidden_dim=8, num_lstm_layers=1, num_attention_heads=2, head_hidden_dims=[4]
    )
    report = load("lstm_quickstart").main(tickers=3, epochs=2, model_config=tiny)
    assert 0 <= report["7d"]["classification"]["accuracy"] <= 1
    assert "weights sum to 1.00" in capsys.readouterr().out


def test_baselines_quickstart() -> None:
    summary = load("baselines_quickstart").main(tickers=2, epochs=2)
    assert set(summary) == {"simple_lstm", "compact_dual_tower"}
    assert summary["compact_dual_tower"]["parameters"] < 3000
