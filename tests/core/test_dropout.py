"""The CPU dropout against torch's as the oracle: the same expectation, drop rate and
gradient rule, repeatable from a seed, and torch's own outside training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.dropout import Dropout


@pytest.mark.parametrize("p", [0.1, 0.2, 0.3, 0.5])
def test_drop_rate_and_expectation_match_torchs_dropout(p: float) -> None:
    torch.manual_seed(0)
    ones = torch.ones(400, 1000)
    ours, theirs = Dropout(p)(ones), nn.Dropout(p)(ones)
    rate = float((ours == 0).float().mean())
    assert abs(rate - round(256 * p) / 256) < 2e-3, "p to the nearest 1/256, then sampling"
    assert abs(rate - float((theirs == 0).float().mean())) < 5e-3
    assert abs(ours.mean() - 1) < 5e-3 and abs(theirs.mean() - 1) < 5e-3
    kept = ours[ours != 0]
    assert torch.allclose(kept, kept[0].expand_as(kept)), "every kept value is scaled alike"


def test_gradient_is_the_mask_times_the_scale() -> None:
    torch.manual_seed(1)
    x = torch.randn(64, 33, requires_grad=True)  # 2,112 elements: not a multiple of 8
    out = Dropout(0.2)(x)
    out.sum().backward()
    scale = out[out != 0] / x.detach()[out != 0]
    assert torch.allclose(scale, torch.full_like(scale, 256 / 205))
    assert torch.equal(x.grad == 0, out == 0)
    assert torch.allclose(x.grad[out != 0], torch.full_like(scale, 256 / 205))


def test_a_seed_repeats_the_mask_and_eval_or_zero_leave_the_input() -> None:
    x = torch.randn(10, 20)
    torch.manual_seed(3)
    first = Dropout(0.3)(x)
    torch.manual_seed(3)
    assert torch.equal(Dropout(0.3)(x), first)
    assert torch.equal(Dropout(0.3).eval()(x), x)
    assert torch.equal(Dropout(0.0)(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))


def test_a_rate_too_small_for_a_byte_level_is_torchs_dropout() -> None:
    """p under 1/512 rounds to no byte level: torch's own mask then keeps the rate."""
    x = torch.ones(1000, 1000)
    torch.manual_seed(4)
    dropped = float((Dropout(0.001)(x) == 0).float().mean())
    assert 0.0008 < dropped < 0.0012
