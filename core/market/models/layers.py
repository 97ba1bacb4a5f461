"""Building blocks shared by the models."""

from __future__ import annotations

from torch import nn


def mlp(input_dim: int, hidden_dims: list[int], dropout: float) -> tuple[nn.Sequential, int]:
    """Linear -> ReLU -> Dropout per hidden width; returns the stack and its output width."""
    layers: list[nn.Module] = []
    width = input_dim
    for hidden in hidden_dims:
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    return nn.Sequential(*layers), width


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
