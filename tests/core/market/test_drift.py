from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.market.drift import feature_drift, level, population_stability
from core.market.features import CONTEXT_FEATURE_GROUPS, STOCK_FEATURES


def direct_psi(train: np.ndarray, live: np.ndarray) -> float:
    """Ten bins at the training deciles, by np.histogram, shares floored at 1e-4."""
    inner = np.quantile(train, np.linspace(0.1, 0.9, 9))
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    e = np.maximum(np.histogram(train, edges)[0] / len(train), 1e-4)
    a = np.maximum(np.histogram(live, edges)[0] / len(live), 1e-4)
    return float(((a - e) * np.log(a / e)).sum())


def test_psi_matches_a_direct_computation_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=5_000)
    same, moved, far = rng.normal(size=2_000), rng.normal(0.3, 1, 2_000), rng.normal(2, 1, 2_000)
    for live in (same, moved, far):
        assert population_stability(train, live) == pytest.approx(direct_psi(train, live), rel=1e-9)
    values = [population_stability(train, live) for live in (same, moved, far)]
    assert values[0] < 0.1 < values[1] < values[2]
    assert [level(v) for v in values] == ["stable", "moderate shift", "large shift"]
    assert np.isnan(population_stability(train, np.array([np.nan])))


def test_drift_per_group_leaves_unknown_context_out() -> None:
    rng = np.random.default_rng(1)
    columns = [*STOCK_FEATURES, *(c for cs in CONTEXT_FEATURE_GROUPS.values() for c in cs)]
    train = pd.DataFrame(rng.normal(size=(3_000, len(columns))), columns=columns)
    live = pd.DataFrame(rng.normal(size=(1_000, len(columns))), columns=columns)
    live[CONTEXT_FEATURE_GROUPS["macro"]] += 3.0
    live["mask_news"] = 0.0  # the news group is unknown on every live row
    live.loc[:10, "mask_news"] = 1.0
    train["mask_news"] = 1.0
    drift = feature_drift(train, live)
    assert drift["macro"]["level"] == "large shift" and drift["stock"]["level"] == "stable"
    assert drift["news"]["features"] == len(CONTEXT_FEATURE_GROUPS["news"])
    assert drift["macro"]["most_moved"] in CONTEXT_FEATURE_GROUPS["macro"]
