"""Training runs, listed, one by id, and named or tagged. What `trendlab runs list|show`
print (services.catalog) and what `runs name|tag` change; the CLI asks these while this server
holds the DuckDB file."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from api.schemas import MAX_RUN_ID, RunLabels
from api.shared import Context, plain, short
from services import catalog
from services.access import ReadOnlyError
from services.database import StorageError
from services.runs_table import label

router = APIRouter()


@router.get("/runs")
def runs(ctx: Context) -> list[dict[str, Any]]:
    return plain([r.facts() for r in catalog.runs(engine=ctx.engine)])


@router.get("/runs/{run_id}")
def run(ctx: Context, run_id: Annotated[int, Path(ge=1, le=MAX_RUN_ID)]) -> dict[str, Any]:
    found = catalog.run_details(engine=ctx.engine, run_id=run_id)
    if found is None:
        raise HTTPException(404, f"No run {run_id}.")
    return plain(found)


@router.patch("/runs/{run_id}")
def label_run(
    ctx: Context, run_id: Annotated[int, Path(ge=1, le=MAX_RUN_ID)], labels: RunLabels
) -> dict[str, Any]:
    """Name a run and add or remove tags (403 when read-only); its name and tags after."""
    try:
        return label(
            engine=ctx.engine,
            run_id=run_id,
            name=labels.name,
            add=labels.add,
            remove=labels.remove,
        )
    except ReadOnlyError as error:
        raise HTTPException(403, short(str(error))) from None
    except StorageError as error:
        raise HTTPException(404, short(str(error))) from None
    except ValueError as error:
        raise HTTPException(422, short(str(error))) from None
