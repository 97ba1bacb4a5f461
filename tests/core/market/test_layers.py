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


def test_bilinear_without_bias_and_under_bf16_autocast() -> None:
    torch.manual_seed(1)
    oracle, ours = nn.Bilinear(4, 6, 2, bias=False), Bilinear(4, 6, 2, bias=False)
    ours.load_state_dict(oracle.state_dict())
    left, right = torch.randn(9, 4), torch.randn(9, 6)
    torch.testing.assert_close(ours(left, right), oracle(left, right), rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = ours(left, right)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), oracle(left, right), rtol=0.05, atol=0.05)


def test_lstm_is_torchs_lstm_and_drops_between_layers_at_its_rate() -> None:
    from core.market.models.layers import LSTM

    torch.manual_seed(2)
    for bidirectional in (False, True):
        oracle = nn.LSTM(5, 6, num_layers=3, batch_first=True, bidirectional=bidirectional)
        ours = LSTM(5, 6, num_layers=3, batch_first=True, bidirectional=bidirectional, dropout=0.5)
        ours.load_state_dict(oracle.state_dict())  # the same parameters and names
        x = torch.randn(4, 7, 5)
        expected = oracle(x)
        ours.eval()
        found = ours(x)
        torch.testing.assert_close(found[0], expected[0])
        torch.testing.assert_close(found[1], expected[1])
        # In training with dropout off between layers (p = 0 on our Dropout) the layer-by-layer
        # path gives torch's outputs and gradients.
        ours.train()
        ours.between.p = 0.0
        ours.dropout = 1e-9  # keeps the layer-by-layer path; p 0 drops nothing
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        (out_ours, (h_ours, c_ours)), (out_torch, (h_torch, c_torch)) = ours(a), oracle(b)
        torch.testing.assert_close(out_ours, out_torch)
        torch.testing.assert_close(h_ours, h_torch)
        torch.testing.assert_close(c_ours, c_torch)
        (out_ours.sum() + h_ours.sum()).backward()
        (out_torch.sum() + h_torch.sum()).backward()
        torch.testing.assert_close(a.grad, b.grad)
        for name, parameter in ours.named_parameters():
            torch.testing.assert_close(parameter.grad, oracle.get_parameter(name).grad)
    # With p = 0.5 about half of what reaches the second layer is dropped: its outputs differ
    # from the undropped ones, and two seeds give two masks.
    ours.between.p = 0.5
    torch.manual_seed(0)
    first = ours(x)[0]
    torch.manual_seed(1)
    assert not torch.allclose(ours(x)[0], first)
    torch.manual_seed(0)
    torch.testing.assert_close(ours(x)[0], first)
