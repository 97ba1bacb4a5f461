"""The stored datasets, listed and one by name (services.facts). The list is what
`trendlab data list` prints; the CLI asks it while this server holds the DuckDB file."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from api.shared import context, plain
from services import facts

router = APIRouter()


@router.get("/datasets")
def datasets() -> list[dict[str, Any]]:
    return plain(facts.datasets(engine=context()[1]))


@router.get("/datasets/{name}")
def dataset(name: Annotated[str, Path(max_length=200)]) -> dict[str, Any]:
    found = facts.dataset(engine=context()[1], name=name)
    if found is None:
        raise HTTPException(404, "No such dataset.")
    return plain(found)
