"""The model building blocks against torch's own modules as the oracle."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.market.models.layers import Bilinear, FeatureGate


@pytest.mark.parametrize(("left", "right"), [(5, 7), (7, 5), (6, 6)])
def test_bilinear_matches_torch_forward_and_gradients(left: int, right: int) -> None:
    """Either input may be the wider one (the layer contracts the wider in its product)."""
    torch.manual_seed(0)
    oracle, ours = nn.Bilinear(left, right, 3), Bilinear(left, right, 3)
    ours.load_state_dict(oracle.state_dict())  # the same parameters and names
    inputs = torch.randn(11, left), torch.randn(11, right)
    outputs = []
    for module in (oracle, ours):
        a, b = (x.clone().requires_grad_() for x in inputs)
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


@pytest.mark.parametrize(
    ("bidirectional", "batch_first", "bias", "given_state"),
    [(False, True, True, False), (True, True, True, True), (True, False, False, True)],
)
def test_lstm_layer_by_layer_is_torchs_lstm(
    bidirectional: bool, batch_first: bool, bias: bool, given_state: bool
) -> None:
    """The layer-by-layer path (training, dropout between layers) against torch's LSTM with
    the same weights: outputs, final states and every gradient. p = 1e-9 takes that path and
    drops nothing (it rounds to no byte level, so the layer falls back to torch's dropout)."""
    from core.market.models.layers import LSTM

    torch.manual_seed(2)
    options = {"batch_first": batch_first, "bidirectional": bidirectional, "bias": bias}
    oracle = nn.LSTM(5, 6, num_layers=3, **options)
    ours = LSTM(5, 6, num_layers=3, dropout=1e-9, **options)
    ours.load_state_dict(oracle.state_dict())  # the same parameters and names
    x = torch.randn(4, 7, 5)
    states = 3 * (2 if bidirectional else 1)
    hx = (torch.randn(states, 7 if not batch_first else 4, 6),) * 2 if given_state else None
    if given_state:
        hx = (hx[0], torch.randn_like(hx[0]))
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    (out_ours, (h_ours, c_ours)), (out_torch, (h_torch, c_torch)) = ours(a, hx), oracle(b, hx)
    torch.testing.assert_close(out_ours, out_torch)
    torch.testing.assert_close(h_ours, h_torch)
    torch.testing.assert_close(c_ours, c_torch)
    (out_ours.sum() + h_ours.sum() + c_ours.sum()).backward()
    (out_torch.sum() + h_torch.sum() + c_torch.sum()).backward()
    torch.testing.assert_close(a.grad, b.grad)
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(parameter.grad, oracle.get_parameter(name).grad)


def test_lstm_drops_between_layers_repeatably_and_refuses_a_wrong_state() -> None:
    from core.market.models.layers import LSTM

    torch.manual_seed(0)
    ours = LSTM(5, 6, num_layers=2, batch_first=True, dropout=0.5)
    x = torch.randn(4, 7, 5)
    torch.manual_seed(0)
    first = ours(x)[0]
    torch.manual_seed(1)
    assert not torch.allclose(ours(x)[0], first), "another seed, another mask"
    torch.manual_seed(0)
    torch.testing.assert_close(ours(x)[0], first)
    ours.eval()
    undropped = ours(x)[0]
    assert not torch.allclose(undropped, first), "the training output was dropped"
    ours.train()
    wrong = (torch.zeros(1, 4, 6), torch.zeros(1, 4, 6))  # one layer's state for two layers
    with pytest.raises(RuntimeError, match="hidden"):
        ours(x, wrong)


def test_a_feature_gate_scales_each_input_and_charges_its_l1_norm() -> None:
    gate = FeatureGate(3, weight=0.1)
    with torch.no_grad():
        gate.scale.copy_(torch.tensor([1.0, -2.0, 0.0]))
    x = torch.tensor([[1.0, 1.0, 5.0], [2.0, 3.0, -1.0]])
    torch.testing.assert_close(gate(x), torch.tensor([[1.0, -2.0, 0.0], [2.0, -6.0, 0.0]]))
    penalty = gate.penalty()
    assert float(penalty) == pytest.approx(0.3)
    penalty.backward()
    torch.testing.assert_close(gate.scale.grad, torch.tensor([0.1, -0.1, 0.0]))
