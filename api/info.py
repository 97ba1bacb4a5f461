"""/info: where the data home and database are, and what the database holds. What
`trendlab info` prints (services.catalog); the CLI asks it while this server holds the DuckDB
file."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.shared import Context, plain
from services import catalog

router = APIRouter()


@router.get("/info")
def info(ctx: Context) -> dict[str, Any]:
    home, engine = ctx.home, ctx.engine
    return plain(catalog.info(home=home, engine=engine))
