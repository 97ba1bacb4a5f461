"""ONNX export: ONNX Runtime agrees with PyTorch within 1e-4 for every registered model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from core.market.export import example_inputs, export_onnx
from core.market.models import MODELS, create_model, model_spec


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_runtime_matches_pytorch(name: str, tmp_path: Path) -> None:
    spec = model_spec(name)
    torch.manual_seed(0)
    model = create_model(name).eval()
    path = tmp_path / f"{name}.onnx"
    names = export_onnx(spec, model, path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(spec.inputs)
    inputs = example_inputs(spec, model, batch=7)  # another batch size than the export's
    if "context_mask" in spec.inputs:
        inputs = (*inputs[:2], torch.tensor([[1.0, 0.0, 1.0]] * 7))
    got = session.run(None, {k: v.numpy() for k, v in zip(spec.inputs, inputs, strict=True)})
    with torch.no_grad():
        expected = model(*inputs)
    for value, output in zip(got, names, strict=True):
        np.testing.assert_allclose(value, expected[output].numpy(), atol=1e-4)
