"""Model cases: training throughput (tensor batches vs a per-sample DataLoader), the speed-up
of today's layers over torch's own, and the prediction latency of the path the Predict page
uses (where a step's time goes: ``bench.cases_step_profile``)."""

from __future__ import annotations

import os
import subprocess
import sys
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
    from core.optimizers import create_optimizer

    spec = model_spec(name)
    figures = {}
    for batch_size in (32, 1024):
        for style in ("tensor", "per_sample"):
            torch.manual_seed(0)
            model = create_model(name)
            loss_fn = spec.make_loss(None, loaders.horizons)
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


SPEEDUP_EPOCHS = {"dual_tower": 4, "lstm_attention": 2}


def _todays_modules(model):
    """The model as it trained before issue 26: torch's own Bilinear, LSTM and Dropout in place
    of the faster ones (same weights; the layers' oracle tests show the same function)."""
    from torch import nn

    from core.dropout import Dropout
    from core.market.models.layers import LSTM, Bilinear

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LSTM):
                old = nn.LSTM(
                    child.input_size,
                    child.hidden_size,
                    num_layers=child.num_layers,
                    batch_first=child.batch_first,
                    dropout=child.dropout,
                    bidirectional=child.bidirectional,
                )
                old.load_state_dict(child.state_dict())
                setattr(parent, name, old)
            elif isinstance(child, Bilinear):
                old = nn.Bilinear(child.in1_features, child.in2_features, child.out_features)
                old.load_state_dict(child.state_dict())
                setattr(parent, name, old)
            elif isinstance(child, Dropout):
                setattr(parent, name, nn.Dropout(child.p))
    return model


def _fit_timed(
    name: str, *, today: bool, threads: int | None, precision: str = "fp32"
) -> tuple[float, float]:
    """(training samples/s over the fit, last validation loss): the real Trainer at batch
    1024 for SPEEDUP_EPOCHS[name] epochs from seed 0, early stopping off, on ``threads``
    torch threads (0: torch's own; None: the training config's) in ``precision``."""
    import torch

    from core.devices import torch_threads
    from core.market.config import DataConfig
    from core.market.models import create_model, model_spec
    from core.market.training import build_loaders
    from core.optimizers import create_optimizer
    from core.step_timer import StepTimer
    from core.trainer import Trainer

    spec = model_spec(name)
    overrides = {"batch_size": 1024, "epochs": SPEEDUP_EPOCHS[name], "precision": precision}
    training = spec.training_config_class.from_dict(
        {**overrides, "early_stopping_patience": 0}, partial=True
    )
    loaders = build_loaders(spec, _dataset(), data=DataConfig(), training=training, seed=0)
    torch.manual_seed(0)
    model = create_model(name)
    if today:
        _todays_modules(model)
    optimizer = create_optimizer(model, training.optimizer)
    if today:
        for group in optimizer.param_groups:
            group["fused"] = False  # torch's per-parameter Adam loop, as before issue 26
    timer = StepTimer()
    trainer = Trainer(
        model,
        spec.make_loss(getattr(training, "loss", None), loaders.horizons),
        optimizer,
        inputs=spec.inputs,
        settings=training,
        timer=timer,
    )
    with torch_threads(training.threads if threads is None else threads):
        trainer.fit(loaders.train, loaders.val)
    samples = loaders.train.num_rows * len(trainer.history)
    return samples / sum(timer.seconds.values()), trainer.history[-1]["val/total"]


FIT_ONCE = """
import sys
import core
from bench.cases_models import _fit_timed
threads = None if sys.argv[3] == "config" else int(sys.argv[3])
rate, loss = _fit_timed(
    sys.argv[1], today=sys.argv[2] == "today", threads=threads, precision=sys.argv[4]
)
print(rate, loss)
"""
SPEEDUP_PATHS = {
    "today": ("today", "", "0", "fp32"),
    "now": ("now", "PASSIVE", "config", "fp32"),
    "now_bf16": ("now", "PASSIVE", "config", "bf16"),
    "now_bf16_all_cores": ("now", "PASSIVE", "0", "bf16"),
}
"""label: (layers, OpenMP wait policy, torch threads, precision). Today's path is the one
before issue 26: torch's Bilinear, Dropout and per-parameter Adam, libgomp's default wait
policy ("" is read as unset: idle threads spin a while, then sleep), torch's own thread count
(0), fp32. Now's is the shipped default (the training config's threads, fp32), the same
with bf16 autocast, and bf16 with ``threads: 0`` (torch's own count, one per core: the
setting for a quiet machine, which the threads field's docstring names)."""
SPEEDUP_REPEATS = 5
"""Runs of each path, alternating; the medians are reported (one run moves 10-25 % with the
host's load; with three runs the LSTM's median ratio moved from 1.27x to 1.86x between
runs, with five, paired runs spread 1.40-1.72x around a median of 1.61x)."""


def _fit_in_process(name: str, *path: str) -> tuple[float, float]:
    """``_fit_timed`` in a fresh process, since OpenMP reads its wait policy once."""
    layers, policy, threads, precision = path
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", FIT_ONCE, name, layers, threads, precision],
        cwd=root,
        env={**os.environ, "OMP_WAIT_POLICY": policy},
        capture_output=True,
        text=True,
        check=True,
    )
    rate, loss = done.stdout.split()[-2:]
    return float(rate), float(loss)


@case(
    "models.train_speedup",
    repeats=1,
    description=(
        "training samples/s at batch 1024 through the Trainer, each path in a fresh process, "
        f"alternating (each {SPEEDUP_REPEATS} times; medians): today's (torch's Bilinear, "
        "Dropout and per-parameter Adam, spinning OpenMP threads, torch's 2 threads, fp32, as "
        "before issue 26), now's as shipped (the Bilinear and byte-mask Dropout layers, fused "
        "Adam, sleeping threads, the training config's threads: 1, fp32), now's with precision "
        "bf16 (autocast; the CPU's AMX units), and bf16 on torch's own threads (threads: 0, the "
        "quiet-machine setting); "
        f"{SPEEDUP_EPOCHS} epochs from seed 0 without early stopping, and the validation loss "
        f"each ends with ({TICKERS} synthetic tickers x 10 years)"
    ),
    target="dual tower at least 2x, LSTM at least 1.5x, validation loss within 1 %",
)
def train_speedup(scratch: Path) -> Timed:
    import statistics

    def measure() -> dict[str, float]:
        figures: dict[str, float] = {}
        for name in SPEEDUP_EPOCHS:
            runs: dict[str, list[tuple[float, float]]] = {label: [] for label in SPEEDUP_PATHS}
            for _ in range(SPEEDUP_REPEATS):
                for label, path in SPEEDUP_PATHS.items():
                    runs[label].append(_fit_in_process(name, *path))
            rates = {label: statistics.median(r for r, _ in runs[label]) for label in runs}
            losses = {label: runs[label][0][1] for label in runs}
            for label in SPEEDUP_PATHS:
                figures[f"{name}_{label}_per_s"] = rates[label]
                figures[f"{name}_val_loss_{label}"] = losses[label]
                if label != "today":
                    figures[f"{name}_{label}_speedup"] = rates[label] / rates["today"]
                    change = 100 * (losses[label] / losses["today"] - 1)
                    figures[f"{name}_{label}_val_loss_change_pct"] = change
        return figures

    return measure


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
