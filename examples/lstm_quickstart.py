"""Seed 003 quick start: weekly windows -> LSTM with temporal attention -> train -> evaluate.

python examples/lstm_quickstart.py
"""

from __future__ import annotations

import argparse

import torch

from core.market.evaluation import score_report
from core.market.loaders import create_lstm_data_loaders
from core.market.losses import LSTMLoss
from core.market.lstm_config import LSTMModelConfig, LSTMTrainingConfig
from core.market.models import create_model, model_spec
from core.market.predictions import model_predictions
from core.market.sources import build_market_dataset, synthetic_data
from core.optimizers import create_optimizer, create_scheduler
from core.trainer import Trainer


def main(tickers: int = 20, epochs: int = 10, model_config: LSTMModelConfig | None = None) -> dict:
    names = [f"T{i:02d}" for i in range(tickers)]
    data = synthetic_data(names, "2015-01-01", "2024-12-31", seed=42, signal=True, horizons=[7, 30])
    df = build_market_dataset(data)
    train_loader, val_loader, test_loader = create_lstm_data_loaders(
        df,
        sequence_length=12,
        batch_size=64,
        normalize=True,
        time_aware_split=True,
        train_fraction=0.7,
        val_fraction=0.15,
        test_fraction=0.15,
    )
    model = create_model("lstm_attention", model_config or LSTMModelConfig())
    settings = LSTMTrainingConfig.from_dict(
        {"epochs": epochs, "batch_size": 64, "scheduler": {"warmup_epochs": 1}}, partial=True
    )
    optimizer = create_optimizer(model, settings.optimizer)
    scheduler = create_scheduler(optimizer, settings.scheduler, total_epochs=epochs)
    spec = model_spec("lstm_attention")
    trainer = Trainer(
        model, LSTMLoss(settings.loss), optimizer, scheduler, inputs=spec.inputs, settings=settings
    )
    trainer.fit(train_loader, val_loader)
    report = score_report(spec, model_predictions(spec, trainer.model, test_loader), df)
    for horizon in ("7d", "30d"):
        section = report[horizon]
        print(
            f"{horizon}: trend corr {section['regression']['pearson']:.3f}, up/down accuracy "
            f"{section['classification']['accuracy']:.3f}"
        )
    batch = next(iter(test_loader))
    with torch.no_grad():
        outputs = trainer.model.eval()(batch["sequence"][:1])
    weights = outputs["attention_weights"][0]
    print(
        f"7-day trend {outputs['7day_trend'].item():.3f}; attention on the last step "
        f"{weights[-1].item():.2f} (weights sum to {weights.sum().item():.2f})"
    )
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    arguments = parser.parse_args()
    main(arguments.tickers, arguments.epochs)
