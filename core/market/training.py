"""One training run from a dataset frame: the path the CLI, the jobs and the examples share.

``train_model`` picks the loaders the model reads, builds model, loss, optimiser and
schedule from configs, checks the data fits the model before the first step, trains with the
one ``Trainer``, and leaves ``best.pt`` / ``last.pt`` in ``run_dir``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.config import Config, flatten, from_flat
from core.devices import torch_threads
from core.market.config import DataConfig, DualTowerModelConfig, MarketTrainingConfig
from core.market.features import CONTEXT_FEATURE_GROUPS, CONTEXT_FEATURES, STOCK_FEATURES
from core.market.loaders import Loaders, create_data_loaders, create_lstm_data_loaders
from core.market.lstm_config import LSTMTrainingConfig
from core.market.metrics import daily_information_coefficients
from core.market.models import ModelSpec, count_parameters, create_model, model_spec
from core.market.splits import training_end
from core.optimizers import create_optimizer, create_scheduler
from core.trainer import Callback, Trainer, TrainingError, seed_everything


def windowed(frame: Any, data: DataConfig) -> Any:
    """The rows dated within ``data.start_date`` .. ``data.end_date`` (a dataset is built
    with its own, so this cuts only a run that trains on a narrower window, e.g. a rolling
    retrain on the latest years; sequence windows then start inside it too)."""
    dates = pd.to_datetime(frame["date"])
    keep = np.ones(len(frame), dtype=bool)
    if data.start_date:
        keep &= (dates >= pd.Timestamp(data.start_date)).to_numpy()
    if data.end_date:
        keep &= (dates <= pd.Timestamp(data.end_date)).to_numpy()
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def training_rows(frame: pd.DataFrame, data: DataConfig, labels: Sequence[str]) -> pd.DataFrame:
    """The rows a run trained on: inside its data window (``windowed``), dated up to the end
    of its training segment (the ``train_fraction`` quantile of the dates on which every one
    of ``labels`` is known)."""
    rows = windowed(frame, data)
    dates = pd.to_datetime(rows["date"])
    present = [c for c in labels if c in rows.columns]
    labelled = dates[rows[present].notna().all(axis=1)] if present else dates
    if labelled.empty:
        return rows
    return rows[(dates <= training_end(labelled, data.train_fraction)).to_numpy()]


def build_loaders(
    spec: ModelSpec, frame: Any, *, data: DataConfig, training: Config, seed: int
) -> Loaders:
    frame = windowed(frame, data)
    batch_size = training.batch_size
    if spec.sequence:
        sequence = training.sequence if isinstance(training, LSTMTrainingConfig) else None
        return create_lstm_data_loaders(
            frame,
            sequence_length=sequence.sequence_length if sequence else 12,
            batch_size=batch_size,
            step=sequence.step if sequence else "weekly",
            config=data,
            seed=seed,
        )
    return create_data_loaders(
        frame, batch_size=batch_size, targets=spec.targets, config=data, seed=seed
    )


def epoch_metrics(
    spec: ModelSpec, horizons: Sequence[int], dates: np.ndarray | None = None
) -> Callable[[dict[str, torch.Tensor], dict], dict[str, float]]:
    """Validation correlation of the score and accuracy of the class, per horizon; with the
    validation rows' ``dates`` (in batch order), the mean daily rank IC per horizon and
    over them (``rank_ic``), which a cross-sectional run stops early on."""

    def metrics(outputs: dict[str, torch.Tensor], batch: dict) -> dict[str, float]:
        result = {}
        for h in horizons:
            score_column, class_column = spec.target.columns(h)
            score, probs = spec.readout(outputs, h)
            target = batch[score_column].numpy()
            prediction = score.numpy()
            ok = np.std(prediction) > 1e-12 and np.std(target) > 1e-12
            result[f"corr_{h}d"] = float(np.corrcoef(prediction, target)[0, 1]) if ok else 0.0
            result[f"acc_{h}d"] = float((probs.argmax(-1) == batch[class_column]).float().mean())
            if dates is not None and len(dates) == len(prediction):
                daily = daily_information_coefficients(
                    pd.DataFrame({"date": dates, "score": prediction, "forward_return": target})
                )
                result[f"rank_ic_{h}d"] = float(daily["rank_ic"].mean()) if len(daily) else 0.0
        ranked = [result[f"rank_ic_{h}d"] for h in horizons if f"rank_ic_{h}d" in result]
        if ranked:
            result["rank_ic"] = float(np.mean(ranked))
        return result

    return metrics


def dataset_fields(spec: ModelSpec, data: DataConfig) -> dict[str, Any]:
    """The model config fields a dataset fixes (dotted path -> value): the widths of the
    feature groups it holds and its label horizons. Forms show them read-only."""
    fields: dict[str, Any] = {"horizons": list(data.horizons)}
    if spec.sequence:
        fields["input_dim"] = len(STOCK_FEATURES)
    elif "context" in spec.inputs and spec.config_class is DualTowerModelConfig:
        fields.update(
            {
                f"context_tower.{group}_dim": len(columns)
                for group, columns in CONTEXT_FEATURE_GROUPS.items()
            }
        )
        fields["stock_tower.input_dim"] = len(STOCK_FEATURES)
    else:
        fields.update({"context_dim": len(CONTEXT_FEATURES), "stock_dim": len(STOCK_FEATURES)})
    return fields


def fit_to_data(spec: ModelSpec, config: Config, data: DataConfig) -> Config:
    """``config`` with the fields the dataset fixes set from it (its horizons, its widths)."""
    values = {**flatten(config.to_dict()), **dataset_fields(spec, data)}
    return from_flat(spec.config_class, values)


def input_mismatch(spec: ModelSpec, config: Config) -> str | None:
    """Why a model config cannot read Trendlab datasets (25 context + 62 stock features),
    or None. Checked before a job is queued, so a wrong size never reaches a worker."""
    if spec.sequence:
        expected = {"input_dim": len(STOCK_FEATURES)}
        found = {"input_dim": config.input_dim}
    elif hasattr(config, "context_tower"):
        expected = {
            "context_tower.input_dim": len(CONTEXT_FEATURES),
            "stock_tower.input_dim": len(STOCK_FEATURES),
        }
        found = {
            "context_tower.input_dim": config.context_tower.input_dim,
            "stock_tower.input_dim": config.stock_tower.input_dim,
        }
    else:
        expected = {"context_dim": len(CONTEXT_FEATURES), "stock_dim": len(STOCK_FEATURES)}
        found = {"context_dim": config.context_dim, "stock_dim": config.stock_dim}
    wrong = [
        f"{k} is {found[k]}, the dataset has {v}" for k, v in expected.items() if found[k] != v
    ]
    return "; ".join(wrong) or None


def check_dimensions(spec: ModelSpec, model: nn.Module, loaders: Loaders) -> None:
    """A model whose input widths differ from the data fails here, before training."""
    config = getattr(model, "config", None)
    tensors = loaders.train.tensors
    expected: dict[str, int] = {}
    if spec.sequence:
        expected["sequence"] = config.input_dim
    elif hasattr(config, "context_tower"):
        expected["context"] = config.context_tower.input_dim
        expected["stock"] = config.stock_tower.input_dim
    else:
        expected["context"], expected["stock"] = config.context_dim, config.stock_dim
    for key, width in expected.items():
        found = tensors[key].shape[-1]
        if found != width:
            raise TrainingError(
                f"The {spec.name} config expects {width} {key} features; the dataset gives "
                f"{found}. Change the model config's input size to {found}."
            )


@dataclass
class TrainResult:
    spec: ModelSpec
    """The model's spec with the targets it trained on."""
    trainer: Trainer
    loaders: Loaders
    history: list[dict[str, float]]
    best_checkpoint: Path | None
    stopped_because: str
    parameters: int


def train_model(
    frame: Any,
    *,
    model_name: str,
    model_config: Config | None = None,
    training: Config | None = None,
    data: DataConfig | None = None,
    run_dir: Path | None = None,
    meta: dict[str, Any] | None = None,
    device: str | None = None,
    callbacks: Iterable[Callback] = (),
    should_stop: Callable[[], bool] | None = None,
    resume_from: Path | None = None,
    shuffle_labels: bool = False,
) -> TrainResult:
    """Train ``model_name`` on a dataset frame; see the module docstring.

    ``shuffle_labels`` permutes the training and validation targets across rows (the
    leak-detector control: a model trained so must land at chance on the test segment).
    """
    data = data or DataConfig()
    model_config = fit_to_data(
        model_spec(model_name), model_config or model_spec(model_name).config_class(), data
    )
    spec = model_spec(model_name, model_config)  # the targets the config asks for
    training = training or spec.training_config_class()
    seed_everything(training.seed)
    loaders = build_loaders(spec, frame, data=data, training=training, seed=training.seed)
    training = size_to_rows(training, loaders)
    if shuffle_labels:
        _shuffle_targets(loaders, seed=training.seed)
    model = create_model(spec.name, model_config)
    check_dimensions(spec, model, loaders)
    optimizer = create_optimizer(model, training.optimizer)
    scheduler = create_scheduler(optimizer, training.scheduler, training.epochs)
    standardizer = loaders.train.standardizer
    checkpoint_meta = {
        **(meta or {}),
        "model": spec.name,
        "config": model_config.to_dict(),
        "training": training.to_dict(),
        "data_config": data.to_dict(),
        "standardizer": standardizer.to_dict() if standardizer else None,
        "features": standardizer.columns if standardizer else [],
        "sequence": spec.sequence,
        "cross_sectional": loaders.cross_sectional,
    }
    trainer = Trainer(
        model,
        spec.make_loss(getattr(training, "loss", None), data.horizons),
        optimizer,
        scheduler,
        inputs=spec.inputs,
        settings=training,
        device=device,
        callbacks=callbacks,
        metrics=epoch_metrics(
            spec,
            data.horizons,
            loaders.val.meta["date"].to_numpy() if loaders.cross_sectional else None,
        ),
        # A cross-section is traded by its order: keep the epoch that ranks validation best.
        monitor="val/rank_ic" if loaders.cross_sectional else "val/total",
        maximize=loaders.cross_sectional,
        checkpoint_dir=run_dir,
        checkpoint_meta=checkpoint_meta,
        should_stop=should_stop,
        feature_names={
            "context": CONTEXT_FEATURES,
            "stock": STOCK_FEATURES,
            "sequence": standardizer.columns if standardizer else STOCK_FEATURES,
        },
    )
    if resume_from is not None:
        from core.checkpoints import load_checkpoint

        state = load_checkpoint(resume_from)
        if state.trainer_state is None:
            raise TrainingError(f"{resume_from} holds no trainer state; resume from last.pt.")
        model.load_state_dict(state.state_dict)
        trainer.load_state(state.trainer_state)
    with torch_threads(training.threads):
        history = trainer.fit(loaders.train, loaders.val)
    best = run_dir / "best.pt" if run_dir is not None and (run_dir / "best.pt").exists() else None
    return TrainResult(
        spec, trainer, loaders, history, best, trainer.stopped_because, count_parameters(model)
    )


def size_to_rows(training: Config, loaders: Loaders) -> Config:
    """``training`` sized to the loaders' training rows (``MarketTrainingConfig.sized_for``),
    the loaders batched at the size chosen."""
    if not isinstance(training, MarketTrainingConfig):
        return training
    sized = training.sized_for(loaders.train.num_rows)
    for part in loaders:
        part.batch_size = sized.batch_size
    return sized


def sizing_sentence(given: Config, used: Config, rows: int) -> str | None:
    """What sizing to ``rows`` changed, in words (None when nothing changed)."""
    changes = []
    if used.batch_size != given.batch_size:
        changes.append(f"batch {given.batch_size} -> {used.batch_size}")
    rate, fitted = given.optimizer.base_learning_rate, used.optimizer.base_learning_rate
    if fitted != rate:
        changes.append(f"learning rate {rate:g} -> {fitted:g}")
    if used.epochs != given.epochs:
        changes.append(f"at most {given.epochs} -> {used.epochs} epochs")
    if not changes:
        return None
    return f"Sized for {rows:,} training rows: {', '.join(changes)} (training.fit_to_rows)"


def _shuffle_targets(loaders: Loaders, *, seed: int) -> None:
    """Permute targets across rows in training and validation, so no real label reaches the
    weights or the early-stopping choice; the test segment keeps its real labels."""
    generator = torch.Generator().manual_seed(seed + 1)
    for part in (loaders.train, loaders.val):
        order = torch.randperm(part.num_rows, generator=generator)
        for key in list(part.tensors):
            if key not in ("context", "context_mask", "stock", "sequence", "volatility"):
                part.tensors[key] = part.tensors[key][order]


@dataclass
class RestoredModel:
    """A trained model rebuilt from its checkpoint, with the loaders it was trained on."""

    spec: ModelSpec
    model: nn.Module
    loaders: Loaders
    training: Config
    data: DataConfig


def restore_from_checkpoint(checkpoint: Any, frame: Any) -> RestoredModel:
    """Rebuild the model and its exact train / validation / test loaders over ``frame``."""
    from core.market.models import rebuild_model

    model = rebuild_model(checkpoint)
    spec = model_spec(checkpoint.meta["model"], model.config)
    training = spec.training_config_class.from_dict(checkpoint.meta["training"])
    data = DataConfig.from_dict(checkpoint.meta["data_config"])
    loaders = build_loaders(spec, frame, data=data, training=training, seed=training.seed)
    return RestoredModel(spec, model, loaders, training, data)
