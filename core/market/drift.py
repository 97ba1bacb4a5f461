"""Feature drift: how far the rows a model now reads have moved from the rows it trained on,
as the population stability index (PSI) per feature, summarised per context group and for
the stock features.

PSI = sum over bins of (live share - train share) * ln(live share / train share), with ten
bins cut at the training rows' deciles (shares floored at 1e-4 so an empty bin stays finite).
The usual reading, which ``level`` gives in words: under 0.1 stable, 0.1 to 0.25 a moderate
shift, above 0.25 a large one. Rows whose context group is unknown (its mask 0, or NaN)
are left out of both sides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.market.features import CONTEXT_FEATURE_GROUPS, STOCK_FEATURES

BINS = 10
FLOOR = 1e-4
LEVELS = ((0.1, "stable"), (0.25, "moderate shift"))


def population_stability(train: np.ndarray, live: np.ndarray, bins: int = BINS) -> float:
    """PSI of ``live`` against ``train`` (1-d, NaN left out); NaN when either is empty."""
    train, live = train[np.isfinite(train)], live[np.isfinite(live)]
    if not len(train) or not len(live):
        return float("nan")
    edges = np.unique(np.quantile(train, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = np.bincount(np.searchsorted(edges, train, side="right"), minlength=len(edges) + 1)
    actual = np.bincount(np.searchsorted(edges, live, side="right"), minlength=len(edges) + 1)
    expected = np.maximum(expected / len(train), FLOOR)
    actual = np.maximum(actual / len(live), FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def level(psi: float) -> str:
    if not np.isfinite(psi):
        return "unknown"
    return next((name for bound, name in LEVELS if psi < bound), "large shift")


def feature_drift(train: pd.DataFrame, live: pd.DataFrame) -> dict[str, dict]:
    """Per group (each context group, then ``stock``): the mean PSI of its features, the
    feature that moved most and its PSI, and the level in words."""
    groups = {**CONTEXT_FEATURE_GROUPS, "stock": STOCK_FEATURES}
    result = {}
    for group, columns in groups.items():
        present = [c for c in columns if c in train.columns and c in live.columns]
        mask = f"mask_{group}"
        known_train = train[train[mask] > 0] if mask in train.columns else train
        known_live = live[live[mask] > 0] if mask in live.columns else live
        values = {
            c: population_stability(known_train[c].to_numpy(float), known_live[c].to_numpy(float))
            for c in present
        }
        known = {c: v for c, v in values.items() if np.isfinite(v)}
        mean = float(np.mean(list(known.values()))) if known else float("nan")
        worst = max(known, key=known.get) if known else None
        result[group] = {
            "psi": mean,
            "level": level(mean),
            "most_moved": worst,
            "most_moved_psi": known[worst] if worst else float("nan"),
            "features": len(known),
        }
    return result
