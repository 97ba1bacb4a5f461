"""The API itself: its OpenAPI document and /health (is the server up, which schema, which
recommender serves)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.schemas import Health
from api.shared import context
from services import catalog
from services.recsys import active_run

router = APIRouter()


# FastAPI's own document would answer without the token; this one has the app's dependencies.
@router.get("/openapi.json", include_in_schema=False)
def openapi_document(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/health")
def health() -> Health:
    _, engine = context()
    return Health(
        status="ok",
        schema_version=catalog.schema(engine=engine),
        active_recommender=active_run(engine=engine),
    )
