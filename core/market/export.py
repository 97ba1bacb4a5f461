"""ONNX export of any registered model (seed 002's next step), with named inputs and outputs.

The exported graph takes the same tensors as ``forward`` (``context``, ``stock``,
``context_mask`` or ``sequence``) with a dynamic batch dimension (sequence models: a fixed
number of steps) and returns every output of the model's dict, in sorted key order, under the
same names. ``tests/core/market/test_export.py``
checks ONNX Runtime against PyTorch within 1e-4 on random valid inputs.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from core.market.models import ModelSpec

EXAMPLE_STEPS = 12


class _Tupled(nn.Module):
    """Dict outputs -> a tuple in a fixed order (ONNX graphs have positional outputs)."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(*inputs)
        return tuple(outputs[name] for name in self.names)


def example_inputs(
    spec: ModelSpec, model: nn.Module, batch: int = 2, steps: int = EXAMPLE_STEPS
) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    config = model.config
    if spec.sequence:
        return (torch.randn(batch, steps, config.input_dim, generator=generator),)
    context_dim = getattr(config, "context_dim", None) or config.context_tower.input_dim
    stock_dim = getattr(config, "stock_dim", None) or config.stock_tower.input_dim
    return (
        torch.randn(batch, context_dim, generator=generator),
        torch.randn(batch, stock_dim, generator=generator),
        torch.ones(batch, 3),
    )


def export_onnx(
    spec: ModelSpec, model: nn.Module, path: Path, *, steps: int = EXAMPLE_STEPS
) -> list[str]:
    """Write ``model`` to ``path`` as ONNX; returns the output names in graph order.

    The batch dimension is dynamic; sequence models are exported for ``steps`` steps (their
    trained sequence length)."""
    model = model.eval()
    inputs = example_inputs(spec, model, steps=steps)
    with torch.no_grad():
        names = sorted(model(*inputs))
    dynamic_axis = torch.export.Dim.DYNAMIC
    shapes = tuple({0: dynamic_axis} for _ in spec.inputs)  # LSTM graphs fix their steps
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # it logs every optional op it skips
    with warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Tupled(model, names),
            inputs,
            str(path),
            input_names=list(spec.inputs),
            output_names=names,
            dynamic_shapes=(shapes,),  # one entry: forward takes *inputs
            opset_version=18,
            dynamo=True,
            verbose=False,
        )
    exporter_log.setLevel(level)
    return names
