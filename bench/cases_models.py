"""Model cases: training throughput (tensor batches vs a per-sample DataLoader) and the
prediction latency of the path the Predict page uses."""

from __future__ import annotations

import time
from pathlib import Path

from bench.harness import Timed, case

TICKERS = 20


def _dataset():
    from core.market.sources import build_market_dataset, synthetic_data

    tickers = [f"T{i:02d}" for i in range(TICKERS)]
    data = synthetic_data(
        tickers, "2015-01-01", "2024-12-31", seed=1, signal=True, horizons=[7, 30]
    )
    return build_market_dataset(data)


def _train_steps(model, loss_fn, optimizer, batches, inputs, limit: int) -> int:
    """Forward, backward and step over batches until ``limit`` samples; returns samples."""
    seen = 0
    model.train()
    for batch in batches:
        outputs = model(*(batch[k] for k in inputs))
        loss, _ = loss_fn(outputs, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(batch[inputs[0]])
        if seen >= limit:
            break
    return seen


class _PerSample:
    """The plain alternative the seeds write: a map-style Dataset over numpy arrays whose
    __getitem__ builds one sample's tensors, batched by DataLoader's default collate."""

    def __init__(self, tensors) -> None:
        self.arrays = {k: v.numpy() for k, v in tensors.items()}

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, index: int):
        import torch

        return {k: torch.tensor(v[index]) for k, v in self.arrays.items()}


def _throughput(name: str, loaders, limit: int) -> dict[str, float]:
    import torch
    from torch.utils.data import DataLoader

    from core.market.models import create_model, model_spec
    from core.trainer import create_optimizer

    spec = model_spec(name)
    figures = {}
    for batch_size in (32, 1024):
        for style in ("tensor", "per_sample"):
            torch.manual_seed(0)
            model = create_model(name)
            loss_fn = spec.make_loss(None)
            optimizer = create_optimizer(model)
            train = loaders.train
            if style == "tensor":
                train.batch_size = batch_size
                batches = train
            else:
                batches = DataLoader(_PerSample(train.tensors), batch_size=batch_size, shuffle=True)
            _train_steps(model, loss_fn, optimizer, batches, spec.inputs, batch_size * 3)
            start = time.perf_counter()
            seen = _train_steps(model, loss_fn, optimizer, batches, spec.inputs, limit)
            figures[f"{style}_b{batch_size}_per_s"] = seen / (time.perf_counter() - start)
        figures[f"speedup_b{batch_size}"] = (
            figures[f"tensor_b{batch_size}_per_s"] / figures[f"per_sample_b{batch_size}_per_s"]
        )
    # The data path alone (no model): what the batching itself costs per sample.
    for style in ("tensor", "per_sample"):
        train = loaders.train
        train.batch_size = 32
        batches = (
            train
            if style == "tensor"
            else DataLoader(_PerSample(train.tensors), batch_size=32, shuffle=True)
        )
        start, seen = time.perf_counter(), 0
        for batch in batches:
            seen += len(batch[spec.inputs[0]])
            if seen >= limit:
                break
        figures[f"loader_only_{style}_b32_per_s"] = seen / (time.perf_counter() - start)
    figures["loader_only_speedup_b32"] = (
        figures["loader_only_tensor_b32_per_s"] / figures["loader_only_per_sample_b32_per_s"]
    )
    return figures


@case(
    "models.dual_tower_train_throughput",
    repeats=1,
    description=(
        f"dual-tower training samples/s ({TICKERS} synthetic tickers x 10 years), tensor "
        "batches vs a per-sample Dataset/DataLoader, batch 32 and 1024"
    ),
    target="tensor batches at least 5x the per-sample loop",
)
def dual_tower_throughput(scratch: Path) -> Timed:
    from core.market.loaders import create_data_loaders

    loaders = create_data_loaders(_dataset())
    return lambda: _throughput("dual_tower", loaders, limit=20_000)


@case(
    "models.lstm_train_throughput",
    repeats=1,
    description="LSTM-attention training sequences/s (daily windows of 12 steps), tensor "
    "batches vs a per-sample Dataset/DataLoader, batch 32 and 1024",
    target="tensor batches at least 5x the per-sample loop",
)
def lstm_throughput(scratch: Path) -> Timed:
    from core.market.loaders import create_lstm_data_loaders

    loaders = create_lstm_data_loaders(_dataset(), step="daily")
    return lambda: _throughput("lstm_attention", loaders, limit=4_000)


@case(
    "models.predict_latency",
    repeats=1,
    description="dual-tower prediction latency through the Predictor (the Predict page and API "
    "path: checkpoint-loaded model, standardiser, masks): one what-if row via predict_features, "
    "a 32-row upload via predict_frame",
    target="p50 under 1 ms for one row on the CPU",
)
def predict_latency(scratch: Path) -> Timed:
    import numpy as np

    from core.checkpoints import save_checkpoint
    from core.market.models import create_model
    from core.market.predict import Predictor
    from core.market.splits import Standardizer

    dataset = _dataset()
    from core.market.features import CONTEXT_FEATURES, STOCK_FEATURES

    columns = [*CONTEXT_FEATURES, *STOCK_FEATURES]
    model = create_model("dual_tower")
    meta = {
        "model": "dual_tower",
        "config": model.config.to_dict(),
        "standardizer": Standardizer.fit(dataset, columns).to_dict(),
        "features": columns,
    }
    path = save_checkpoint(scratch / "best.pt", model=model, meta=meta)
    predictor = Predictor.from_checkpoint(path)
    one = dataset.iloc[100][columns].to_dict()  # the what-if form's row
    many = dataset.iloc[200:232]  # a batch upload

    def measure() -> dict[str, float]:
        figures = {}
        calls = (
            ("one", lambda: predictor.predict_features(one), 2000),
            ("batch32", lambda: predictor.predict_frame(many), 500),
        )
        for label, call, count in calls:
            for _ in range(50):
                call()
            timings = []
            for _ in range(count):
                start = time.perf_counter()
                call()
                timings.append((time.perf_counter() - start) * 1000)
            figures[f"{label}_p50_ms"] = float(np.percentile(timings, 50))
            figures[f"{label}_p99_ms"] = float(np.percentile(timings, 99))
        return figures

    return measure
