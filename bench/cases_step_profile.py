"""Where a training step's time goes: each registered market model's step through the real
Trainer, section by section, with its FLOPs and the rate they run at beside a GEMM."""

from __future__ import annotations

import math
import time
from pathlib import Path

from bench.cases_models import TICKERS, _dataset
from bench.harness import Timed, case

PROFILED_STEPS = 12


def _step_profile(name: str, frame, batch_size: int) -> dict[str, float]:
    """One model's training step through the real Trainer with a StepTimer: seconds per
    section, samples/s, FLOPs per sample (forward + backward) and the rate they run at."""
    from itertools import islice

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from core.market.config import DataConfig
    from core.market.models import create_model, model_spec
    from core.market.training import build_loaders
    from core.optimizers import create_optimizer
    from core.step_timer import StepTimer
    from core.trainer import Trainer

    spec = model_spec(name)
    training = spec.training_config_class.from_dict({"batch_size": batch_size}, partial=True)
    loaders = build_loaders(spec, frame, data=DataConfig(), training=training, seed=0)
    torch.manual_seed(0)
    model = create_model(name)
    loss_fn = spec.make_loss(getattr(training, "loss", None), loaders.horizons)
    trainer = Trainer(
        model,
        loss_fn,
        create_optimizer(model, training.optimizer),
        inputs=spec.inputs,
        settings=training,
    )
    trainer.train_epoch(islice(loaders.train, 3))  # warm-up: allocator, kernels, Adam state
    trainer.timer = timer = StepTimer()
    trainer.train_epoch(islice(loaders.train, PROFILED_STEPS))
    steps = timer.calls["forward"]
    batch = next(iter(loaders.train))
    with FlopCounterMode(display=False) as counter:
        loss, _ = loss_fn(model(*(batch[k] for k in spec.inputs)), batch)
        loss.backward()
    flops = counter.get_total_flops() + _recurrent_flops(model, batch)
    per_sample = flops / len(batch[spec.inputs[0]])
    seconds = sum(timer.seconds.values())
    samples_per_s = steps * batch_size / seconds
    figures = {f"{section}_ms": 1000 * s / steps for section, s in timer.seconds.items()}
    return {
        **figures,
        "step_ms": 1000 * seconds / steps,
        "samples_per_s": samples_per_s,
        "mflop_per_sample": per_sample / 1e6,
        "gflop_per_s": per_sample * samples_per_s / 1e9,
    }


def _recurrent_flops(model, batch) -> float:
    """FLOPs of the LSTM layers, which the FLOP counter does not see (oneDNN's fused RNN
    kernel): per step, layer and direction 2 x 4H x (input + H) x B forward, twice that
    backward."""
    import torch

    total = 0.0
    for module in model.modules():
        if not isinstance(module, torch.nn.LSTM):
            continue
        sequence = batch["sequence"]
        rows, steps = sequence.shape[0], sequence.shape[1]
        directions = 2 if module.bidirectional else 1
        width = module.input_size
        for _ in range(module.num_layers):
            per_step = 2 * 4 * module.hidden_size * (width + module.hidden_size) * rows
            total += 3 * per_step * steps * directions  # forward + backward (2x)
            width = module.hidden_size * directions
    return total


def _gemm_gflops() -> float:
    """What one float32 matrix product reaches here (1024 x 1024 x 1024, best of 5)."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = math.inf
    for _ in range(6):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 1024**3 / best / 1e9


@case(
    "models.step_profile",
    repeats=1,
    description=(
        f"one training step of each registered market model through the Trainer ({TICKERS} "
        f"synthetic tickers x 10 years; {PROFILED_STEPS} steps after 3 warm-up steps), per "
        "section (data, forward, loss, backward, optimizer, callbacks) in ms, samples/s, FLOPs "
        "per sample (forward + backward) and the GFLOP/s they run at beside a 1024^3 GEMM"
    ),
    target="a step's share the machine could do faster is a number (gflop_per_s vs gemm)",
)
def step_profile(scratch: Path) -> Timed:
    from core.market.models import MODELS

    frame = _dataset()

    def measure() -> dict[str, float]:
        figures = {"gemm_gflop_per_s": _gemm_gflops()}
        for name in MODELS:
            for batch_size in (32, 1024):
                for key, value in _step_profile(name, frame, batch_size).items():
                    figures[f"{name}_b{batch_size}_{key}"] = value
        return figures

    return measure
