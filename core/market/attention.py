"""How far a sequence model's temporal attention is from uniform: a heatmap of weights near
1/T makes noise look like structure, so the figures are read against uniform first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNIFORM_ENTROPY = 0.99
"""Mean normalised entropy (H / log T) above which attention is called uniform: at T = 12,
weights of 0.081-0.085 (issue 39's LSTM) give 0.9999."""
UNIFORM_GAP = 0.10
"""Largest relative gap |mean weight - 1/T| / (1/T) of a step below which the mean profile is
called uniform."""


@dataclass(frozen=True)
class AttentionSpread:
    steps: int
    uniform: float
    """1/T, the weight every step would get if attention read nothing."""
    entropy: float
    """Mean over samples of H(w) / log T: 1 for uniform weights, 0 for one step."""
    largest_gap: float
    """Largest relative gap of a step's mean weight from 1/T."""

    @property
    def is_uniform(self) -> bool:
        return self.entropy >= UNIFORM_ENTROPY and self.largest_gap <= UNIFORM_GAP

    def sentence(self) -> str:
        return (
            f"Attention is uniform within noise: over {self.steps} steps the weights stay near "
            f"1/{self.steps} = {self.uniform:.3f} (mean normalised entropy {self.entropy:.4f}, "
            f"no step's mean more than {self.largest_gap:.0%} from uniform), so the model "
            "weighs every day alike and the heatmap shows no structure."
            if self.is_uniform
            else f"Attention departs from uniform (1/{self.steps} = {self.uniform:.3f}): mean "
            f"normalised entropy {self.entropy:.3f}, the most-read step's mean "
            f"{self.largest_gap:.0%} from uniform."
        )


def attention_spread(weights: np.ndarray) -> AttentionSpread:
    """(samples, steps) attention weights, each row summing to 1."""
    weights = np.asarray(weights, dtype=np.float64)
    steps = weights.shape[1]
    uniform = 1.0 / steps
    clipped = np.clip(weights, 1e-12, None)
    entropy = -(clipped * np.log(clipped)).sum(axis=1) / np.log(steps) if steps > 1 else 1.0
    gaps = np.abs(weights.mean(axis=0) - uniform) / uniform
    return AttentionSpread(
        steps=steps,
        uniform=uniform,
        entropy=float(np.mean(entropy)),
        largest_gap=float(gaps.max()) if steps else 0.0,
    )
