"""The market metrics table as shown: intervals in their cells, shares in percent, the
primary metric first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.market.tables import readable_metrics


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "predictor": ["model", "momentum"],
            "corr": [0.1234, -0.02],
            "corr 95%": ["+0.050..+0.200", "-"],
            "MSE": [0.5, 0.6],
            "direction acc": [0.5432, 0.5],
            "rank IC": [0.031, np.nan],
            "rank IC 95%": ["+0.004..+0.058", "-"],
            "Sharpe (market-neutral)": [1.2, 0.3],
            "Sharpe 95%": ["+0.100..+2.300", "-"],
            "seed level": ["good", "below"],
        }
    )


def test_intervals_fold_into_their_cells_and_shares_read_in_percent() -> None:
    cells, headline = readable_metrics(_table(), "rank_ic")
    assert headline == [
        "predictor",
        "rank IC",
        "corr",
        "Sharpe (market-neutral)",
        "direction acc",
    ]
    assert list(cells.columns[: len(headline)]) == headline
    assert "MSE" in cells.columns and not any(c.endswith("95%") for c in cells.columns)
    model, momentum = cells.iloc[0], cells.iloc[1]
    assert model["corr"] == "+0.123 (+0.050..+0.200)"
    assert model["rank IC"] == "+0.031 (+0.004..+0.058)"
    assert model["Sharpe (market-neutral)"] == "+1.200 (+0.100..+2.300)"
    assert model["direction acc"] == "54.3%" and model["seed level"] == "good"
    assert momentum["corr"] == "-0.020" and momentum["rank IC"] == "-"


def test_the_primary_metric_leads_whatever_it_is() -> None:
    _, headline = readable_metrics(_table(), "pearson")
    assert headline[:3] == ["predictor", "corr", "rank IC"]
    _, without = readable_metrics(_table(), None)
    assert without[:2] == ["predictor", "rank IC"]
