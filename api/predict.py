"""/predict: a market model's run scores feature rows (the Predictor path)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter, HTTPException

from api.schemas import PredictRequest
from api.shared import Context, short
from core.checkpoints import CheckpointError
from core.market.predict import TABULAR_COLUMNS, PredictionInputError
from services.database import StorageError
from services.market.evaluation import run_predictor
from services.runs import UnknownRun

MODEL_COLUMNS = frozenset(["date", "ticker", *TABULAR_COLUMNS])  # all any market model reads

router = APIRouter()


@router.post("/predict")
def predict(ctx: Context, request: PredictRequest) -> dict[str, Any]:
    """Scores of a market model's run for feature rows (the Predictor path)."""
    engine = ctx.engine
    try:
        predictor = run_predictor(engine=engine, run_id=request.run_id)
    except UnknownRun:
        raise HTTPException(404, f"No run {request.run_id}.") from None
    except (StorageError, CheckpointError) as error:  # unfinished, missing or altered
        raise HTTPException(409, short(str(error))) from None
    # Only the columns a model reads: 10,000 rows of one made-up key each would otherwise
    # build a 10,000 x 10,000 frame (800 MB) from a 200 kB body.
    rows = [{k: v for k, v in row.items() if k in MODEL_COLUMNS} for row in request.rows]
    try:
        table = predictor.predict_frame(pd.DataFrame(rows, index=range(len(rows))))
    except PredictionInputError as error:
        raise HTTPException(422, short(str(error))) from None
    table = table.astype(object).where(table.notna(), None)
    return {
        "run_id": request.run_id,
        "model": predictor.spec.name,
        "predictions": table.to_dict("records"),
    }
