"""``create_api``: the FastAPI app mounted under /api, with the checks every route goes
through (api.dependencies) and the routers of each resource."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError

from api import datasets, forecasts, health, info, predict, recommendations, runs, sweeps
from api.dependencies import (
    BodySizeLimit,
    answer_validation_error,
    decoded_input,
    max_body_bytes,
    require_token,
)
from services.access import Throttle

# In this order, the order of the OpenAPI document's paths.
ROUTERS = (health, recommendations, info, datasets, runs, sweeps, predict, forecasts)


def create_api(*, throttle: Throttle | None = None) -> FastAPI:
    """The API app; ``throttle`` counts wrong tokens (a fresh one per app by default)."""
    api = FastAPI(
        title="Trendlab API",
        version="1",
        description="Recommendations and market-model predictions from the Trendlab server.",
        dependencies=[Depends(require_token), Depends(decoded_input)],
        # FastAPI's own document and pages would answer without the token (api.health serves
        # the document with it).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    api.state.token_throttle = throttle or Throttle()
    api.add_middleware(BodySizeLimit, max_bytes=max_body_bytes())
    api.add_exception_handler(RequestValidationError, answer_validation_error)
    for module in ROUTERS:
        api.include_router(module.router)
    return api
