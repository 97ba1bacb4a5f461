"""/forecasts/latest: a market run's newest stored forecast (what `trendlab forecast RUN
--json` printed when it was made), read-only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api.schemas import MAX_RUN_ID
from api.shared import Context, plain
from services.market.forecasts import latest_forecasts
from services.runs import UnknownRun

router = APIRouter()


@router.get("/forecasts/latest")
def latest(ctx: Context, run_id: Annotated[int, Query(ge=1, le=MAX_RUN_ID)]) -> dict[str, Any]:
    """The run's forecasts as of its newest as-of date (an empty list before any)."""
    try:
        return plain(latest_forecasts(engine=ctx.engine, run_id=run_id))
    except UnknownRun:
        raise HTTPException(404, f"No run {run_id}.") from None
