"""Which device training runs on, resolved once where a command or a job starts (the CLI,
the worker), never inside a model file or the trainer, which take the device they are
given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits

DEVICES = ("auto", "cpu", "cuda")
"""What a user may ask for; ``cuda:N`` names one GPU of several."""


class DeviceError(ValueError):
    """A device that cannot be used here (an unknown name, or CUDA on a machine without it)."""


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto`` (or None): CUDA when this machine has it, else the CPU; ``cpu``; ``cuda`` or
    ``cuda:N``, refused with a DeviceError on a machine without CUDA or without that GPU, so
    the refusal comes before any work starts."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"Device {name!r} was asked for, but this machine has no CUDA GPU that torch "
                "can use (torch.cuda.is_available() is False); use --device cpu or auto."
            )
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"Device {name!r} was asked for, but this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s)."
            )
        return torch.device(name)
    raise DeviceError(f"Unknown device {name!r}; use one of {', '.join(DEVICES)} or cuda:N.")


def available_devices() -> list[str]:
    """What this machine can train on, for a picker: auto, cpu, and cuda (cuda:N for each GPU
    when there are several) where torch sees CUDA."""
    if not torch.cuda.is_available():
        return ["auto", "cpu"]
    count = torch.cuda.device_count()
    return ["auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(count) if count > 1)]


def bf16_is_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware: a CUDA GPU that supports it, or a CPU
    with AVX512-BF16 or AMX tiles (elsewhere torch emulates it, slower than fp32)."""
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return device.type == "cpu" and any(getattr(torch.cpu, n, lambda: False)() for n in checks)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype a training step's forward pass and loss run in under autocast for a config's
    ``precision`` ('fp32': None, no autocast; 'bf16': torch.bfloat16) on ``device``."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type not in ("cpu", "cuda"):
            raise DeviceError(f"bf16 training is not available on {device.type!r}.")
        return torch.bfloat16
    raise DeviceError(f"Unknown precision {precision!r}; use 'fp32' or 'bf16'.")


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a CUDA GPU runs it asynchronously; the CPU
    has nothing to wait for), so a timer around it measures the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch's intra-op threads set to ``count`` inside the block (0: left as they are), and
    put back after it, so a setting of one run does not leak into the next in the same
    process (the server's page tests, a notebook)."""
    before = torch.get_num_threads()
    if count > 0:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def run_threads(count: int) -> Iterator[None]:
    """``torch_threads`` plus the BLAS and OpenMP pools numpy, scipy and scikit-learn use
    (threadpoolctl), for a whole run: its fit and its evaluation (0: all left as they are).
    Those pools matter beside other work: a market job whose test evaluation ran numpy on
    two BLAS threads took 3x its time alone beside one busy process, 1.16x with them at the
    run's count (bench models.concurrent_training). The recommender's fit keeps two BLAS
    threads for its least-squares solves and EASE (not measured under this rule yet)."""
    if count <= 0:
        yield
        return
    with torch_threads(count), threadpool_limits(limits=count):
        yield
