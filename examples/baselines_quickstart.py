"""Seed 002 quick start: SimpleLSTM and the compact dual tower on the 3-class trend, through
the same training path as the CLI (``core.market.training.train_model``), then a training summary.

    python examples/baselines_quickstart.py
"""

from __future__ import annotations

import argparse
import json

from core.market.config import TrainingConfig
from core.market.evaluation import score_report
from core.market.lstm_config import LSTMTrainingConfig
from core.market.models import model_spec
from core.market.predictions import model_predictions
from core.market.sources import build_market_dataset, synthetic_data
from core.market.training import train_model


def main(tickers: int = 7, epochs: int = 20) -> dict:
    names = [f"T{i:02d}" for i in range(tickers)]
    data = synthetic_data(names, "2015-01-01", "2024-12-31", seed=42, signal=True, horizons=[7, 30])
    df = build_market_dataset(data)
    summary = {}
    for name, settings_class in (
        ("simple_lstm", LSTMTrainingConfig),
        ("compact_dual_tower", TrainingConfig),
    ):
        settings = settings_class.from_dict(
            {"epochs": epochs, "batch_size": 64, "scheduler": {"warmup_epochs": 1}}, partial=True
        )
        result = train_model(df, model_name=name, training=settings)
        spec = model_spec(name)
        report = score_report(
            spec, model_predictions(spec, result.trainer.model, result.loaders.test), df
        )
        summary[name] = {
            "parameters": result.parameters,
            "epochs": len(result.history),
            "test_accuracy_7d": report["7d"]["classification"]["accuracy"],
            "test_macro_f1_7d": report["7d"]["classification"]["macro_f1"],
        }
    print(json.dumps(summary, indent=2))  # seed 002's training_summary.json, per model
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=20)
    arguments = parser.parse_args()
    main(arguments.tickers, arguments.epochs)
