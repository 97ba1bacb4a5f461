"""The stored datasets, listed and one by name (services.catalog). The list is what
`trendlab data list` prints; the CLI asks it while this server holds the DuckDB file."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from api.shared import Context, plain
from services import catalog

router = APIRouter()


@router.get("/datasets")
def datasets(ctx: Context) -> list[dict[str, Any]]:
    return plain([d.facts() for d in catalog.datasets(engine=ctx.engine)])


@router.get("/datasets/{name}")
def dataset(ctx: Context, name: Annotated[str, Path(max_length=200)]) -> dict[str, Any]:
    found = catalog.dataset_details(engine=ctx.engine, name=name)
    if found is None:
        raise HTTPException(404, "No such dataset.")
    return plain(found)
