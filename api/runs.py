"""Training runs, listed and one by id. What `trendlab runs list` and `runs show` print
(services.facts); the CLI asks these while this server holds the DuckDB file."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from api.schemas import MAX_RUN_ID
from api.shared import context, plain
from services import facts

router = APIRouter()


@router.get("/runs")
def runs() -> list[dict[str, Any]]:
    return plain(facts.runs(engine=context()[1]))


@router.get("/runs/{run_id}")
def run(run_id: Annotated[int, Path(ge=1, le=MAX_RUN_ID)]) -> dict[str, Any]:
    found = facts.run(engine=context()[1], run_id=run_id)
    if found is None:
        raise HTTPException(404, f"No run {run_id}.")
    return plain(found)
