"""What batch prediction reads (``core.market.predict.predict_csv``): the columns a run's
model takes, and a template CSV of them with an example from the run's dataset."""

from __future__ import annotations

import pandas as pd

from core.market.features import STOCK_FEATURES
from core.market.loaders import weekly_rows
from core.market.predict import TABULAR_COLUMNS, Predictor

LABELS = ["date", "ticker"]
"""The columns that name a row; a sequence model groups and orders its rows by them."""


def batch_columns(predictor: Predictor) -> list[str]:
    """The columns ``Predictor.predict_frame`` reads for this model, in its order: a row's
    labels, then every feature of a tabular model (context columns may be left out: that
    group is then unknown) or the features a sequence model was standardised on."""
    if predictor.spec.sequence:
        standardizer = predictor.standardizer
        return [*LABELS, *(standardizer.columns if standardizer else STOCK_FEATURES)]
    return [*LABELS, *TABULAR_COLUMNS]


def template_rows(predictor: Predictor, frame: pd.DataFrame) -> pd.DataFrame:
    """The batch columns with an example from the run's dataset ``frame``: the last row of its
    first ticker, or for a sequence model that ticker's last window (``sequence_length``
    steps, one a week for a weekly model), the fewest rows it scores."""
    ticker = sorted(frame["ticker"].unique())[0]
    rows = frame[frame["ticker"] == ticker].assign(date=lambda r: pd.to_datetime(r["date"]))
    rows = rows.sort_values("date").reset_index(drop=True)
    if not predictor.spec.sequence:
        rows = rows.tail(1)
    else:
        step = predictor.meta.get("training", {}).get("sequence", {}).get("step", "weekly")
        rows = (weekly_rows(rows) if step == "weekly" else rows).tail(predictor.sequence_length)
    rows = rows.assign(date=rows["date"].dt.strftime("%Y-%m-%d"))
    return rows.reindex(columns=batch_columns(predictor)).reset_index(drop=True)
