"""Attention read against uniform: the oracle is the definition on weights built to be
uniform within noise, or peaked."""

from __future__ import annotations

import numpy as np
import pytest

from core.market.attention import attention_spread


def test_weights_of_0_081_to_0_085_over_12_steps_are_uniform_within_noise() -> None:
    """Issue 39's LSTM: weights 0.081-0.085 against 1/12 = 0.083, drawn as if structured."""
    rng = np.random.default_rng(0)
    weights = 1 / 12 + rng.uniform(-0.002, 0.002, size=(500, 12))
    weights /= weights.sum(axis=1, keepdims=True)
    spread = attention_spread(weights)
    assert spread.uniform == pytest.approx(1 / 12) and spread.steps == 12
    assert spread.entropy > 0.999 and spread.largest_gap < 0.05
    assert spread.is_uniform
    assert spread.sentence().startswith("Attention is uniform within noise")


def test_attention_on_the_last_steps_is_not_uniform_and_its_entropy_matches_the_formula() -> None:
    weights = np.full((50, 4), 0.1)
    weights[:, -1] = 0.7
    spread = attention_spread(weights)
    expected = -(3 * 0.1 * np.log(0.1) + 0.7 * np.log(0.7)) / np.log(4)
    assert spread.entropy == pytest.approx(expected)
    assert spread.largest_gap == pytest.approx((0.7 - 0.25) / 0.25)
    assert not spread.is_uniform
    assert spread.sentence().startswith("Attention departs from uniform")
