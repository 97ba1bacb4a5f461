"""The model building blocks against torch's own modules as the oracle."""

from __future__ import annotations

import torch
from torch import nn

from core.market.models.layers import Bilinear


def test_bilinear_matches_torch_forward_and_gradients() -> None:
    torch.manual_seed(0)
    oracle, ours = nn.Bilinear(5, 7, 3), Bilinear(5, 7, 3)
    ours.load_state_dict(oracle.state_dict())  # the same parameters and names
    left, right = torch.randn(11, 5), torch.randn(11, 7)
    outputs = []
    for module in (oracle, ours):
        a, b = left.clone().requires_grad_(), right.clone().requires_grad_()
        out = module(a, b)
        (out * torch.arange(3.0)).sum().backward()  # unequal weights reach every unit
        outputs.append((out, a.grad, b.grad, module.weight.grad, module.bias.grad))
    for expected, found in zip(*outputs, strict=True):
        torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-5)
