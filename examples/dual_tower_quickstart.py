"""Seeds 000/001 quick start: synthetic data, loaders, dual tower, train, evaluate, predict.

python examples/dual_tower_quickstart.py            # about a minute on a laptop CPU
"""

from __future__ import annotations

import argparse

import torch

from core.devices import resolve_device
from core.market.config import DualTowerModelConfig, LossConfig, TrainingConfig
from core.market.evaluation import score_report, seed_level
from core.market.loaders import create_data_loaders
from core.market.losses import DualTowerLoss
from core.market.models import create_model, model_spec
from core.market.predictions import model_predictions
from core.market.sources import build_market_dataset, synthetic_data
from core.optimizers import create_optimizer, create_scheduler
from core.trainer import Trainer


def main(
    tickers: int = 20, epochs: int = 15, model_config: DualTowerModelConfig | None = None
) -> dict:
    # 1. Data: a synthetic market with a planted context signal (docs/data.md).
    names = [f"T{i:02d}" for i in range(tickers)]
    data = synthetic_data(names, "2015-01-01", "2024-12-31", seed=42, signal=True, horizons=[7, 30])
    df = build_market_dataset(data)
    print(f"Dataset shape: {df.shape}")

    # 2. Loaders: purged time split, standardiser fit on the training segment.
    train_loader, val_loader, test_loader = create_data_loaders(df, batch_size=256, normalize=True)

    # 3. Model, loss, optimiser (stock tower at 0.5x the rate) and cosine schedule.
    model = create_model("dual_tower", model_config or DualTowerModelConfig())
    settings = TrainingConfig.from_dict(
        {"epochs": epochs, "batch_size": 256, "scheduler": {"warmup_epochs": 1}}, partial=True
    )
    optimizer = create_optimizer(model, settings.optimizer)
    scheduler = create_scheduler(optimizer, settings.scheduler, total_epochs=epochs)
    loss_fn = DualTowerLoss(LossConfig())

    # 4. Train with the one trainer (early stopping, clipping, best weights kept).
    spec = model_spec("dual_tower")
    trainer = Trainer(
        model,
        loss_fn,
        optimizer,
        scheduler,
        inputs=spec.inputs,
        settings=settings,
        device=resolve_device("auto"),
    )
    history = trainer.fit(train_loader, val_loader)
    print(f"Trained {len(history)} epochs; best validation loss {trainer.best_loss:.4f}")

    # 5. Evaluate on the test segment, against the labels and the latent truth.
    report = score_report(spec, model_predictions(spec, trainer.model, test_loader), df)
    for horizon in ("7d", "30d"):
        oracle = report[horizon]["vs_oracle"]
        print(
            f"{horizon}: corr vs oracle {oracle['pearson']:.3f}, MSE {oracle['mse']:.4f}, "
            f"direction acc {oracle['direction_accuracy']:.3f} -> {seed_level(report[horizon])}"
        )

    # 6. Predict one row, as seed 000 does.
    batch = next(iter(test_loader))
    trainer.model.eval()
    with torch.no_grad():
        outputs = trainer.model(*(batch[k][:1].to(trainer.device) for k in spec.inputs))
    relevance = outputs["score_7d"].item()
    print(
        f"7-day relevance: {relevance:.4f} ({'positive' if relevance > 0 else 'negative'}), "
        f"P(positive) {outputs['pos_prob_7d'].item():.3f}"
    )
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=15)
    arguments = parser.parse_args()
    main(arguments.tickers, arguments.epochs)
