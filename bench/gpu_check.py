"""Every registered model trains 2 epochs on CUDA and on the CPU from the same seed; the
per-epoch training losses must agree within ``TOLERANCE`` (relative), and samples/s on each
device are printed.

    python bench/gpu_check.py [--epochs 2] [--models dual_tower,two_tower]

On a machine without CUDA it prints one line saying so and exits 0 (CI never has a GPU);
run it through the device tool when a GPU is lent and put its output in BENCHMARKS.md with
the date. Exit code 1 when some model's curves disagree. Data: a small generated market
(5 tickers, 2016-2020, generator seed 3) and a small generated recommender dataset
(200 users, 4,000 interactions), the same on both devices.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from core.market.sources import build_market_dataset, synthetic_data  # noqa: E402
from core.market.training import train_model  # noqa: E402
from core.recsys.synthetic import RecsysSpec, generate_recsys  # noqa: E402
from core.recsys.training import train_recommender  # noqa: E402
from services.registry import TRAINABLE  # noqa: E402

TOLERANCE = 0.02
"""Largest relative difference allowed between a CPU and a CUDA epoch's training loss: the
two reduce sums in different orders (and cuDNN's LSTM is its own kernel), so bit equality
is not expected; 2 % still catches a wrong device path, a lost gradient or a missed copy."""


def _market_trainer(name: str, epochs: int) -> Callable[[str], tuple[list[float], int]]:
    tickers = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    data = synthetic_data(
        tickers, "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
    )
    frame = build_market_dataset(data)
    model = TRAINABLE[name]

    def train(device: str) -> tuple[list[float], int]:
        training = model.training_config_class.from_dict(
            {"epochs": epochs, "early_stopping_patience": 0, "seed": 0}, partial=True
        )
        result = train_model(frame, model_name=name, training=training, device=device)
        losses = [record["train/total"] for record in result.history]
        return losses, result.loaders.train.num_rows * len(losses)

    return train


def _recommender_trainer(epochs: int) -> Callable[[str], tuple[list[float], int]]:
    data = generate_recsys(RecsysSpec(users=200, interactions=4000, seed=0))
    model = TRAINABLE["two_tower"]

    def train(device: str) -> tuple[list[float], int]:
        training = model.training_config_class.from_dict(
            {"epochs": epochs, "early_stopping_patience": epochs, "seed": 0}, partial=True
        )
        result = train_recommender(data, training=training, device=device, baselines=False)
        losses = [record["train/total"] for record in result.history]
        return losses, len(data.interactions) * len(losses)

    return train


def check(
    name: str,
    train: Callable[[str], tuple[list[float], int]],
    devices: tuple[str, str] = ("cpu", "cuda"),
) -> bool:
    """Train on both devices; print the curves, the worst relative gap and samples/s."""
    figures = []
    for device in devices:
        started = time.perf_counter()
        losses, samples = train(device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        figures.append((losses, samples / (time.perf_counter() - started)))
    (cpu, cpu_rate), (cuda, cuda_rate) = figures
    gaps = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(cpu, cuda, strict=True)]
    agree = len(cpu) == len(cuda) and max(gaps, default=0.0) <= TOLERANCE
    first, second = devices
    print(
        f"{name:20} {'agree' if agree else 'DISAGREE'}: worst epoch gap {max(gaps):.2%} "
        f"({first} {', '.join(f'{x:.4f}' for x in cpu)}; "
        f"{second} {', '.join(f'{x:.4f}' for x in cuda)}); "
        f"{cpu_rate:,.0f} samples/s on {first}, {cuda_rate:,.0f} on {second}"
    )
    return agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", default=",".join(TRAINABLE))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no GPU: torch sees no CUDA device here, so there is nothing to compare (exit 0).")
        return 0
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, tolerance {TOLERANCE:.0%}")
    results = []
    for name in args.models.split(","):
        if "recommend" in TRAINABLE[name].pages:
            train = _recommender_trainer(args.epochs)
        else:
            train = _market_trainer(name, args.epochs)
        results.append(check(name, train))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
