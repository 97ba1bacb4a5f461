"""Where a training step's time goes: the trainer times its sections (data, forward, loss,
backward, optimizer, callbacks) with a ``StepTimer`` when it is given one, and with nothing
otherwise (bench/ ``models.step_profile`` reads the sums)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import torch

from core.devices import synchronize


class SectionTimer(Protocol):
    def section(self, name: str) -> AbstractContextManager[None]: ...


class StepTimer:
    """Wall-clock seconds per named section, summed over every step it timed. On a CUDA
    device each boundary waits for the queued kernels, so a section holds its own work (and
    the steps run slower than untimed ones)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.device = torch.device(device)

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        started = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds[name] += time.perf_counter() - started
            self.calls[name] += 1

    def shares(self) -> dict[str, float]:
        """Each section's fraction of the timed total."""
        total = sum(self.seconds.values()) or 1.0
        return {name: seconds / total for name, seconds in self.seconds.items()}
