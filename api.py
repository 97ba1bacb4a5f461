"""The HTTP API, served under /api on the dashboard's own port (see server.py).

Like a page, each handler gathers input, calls core/ and storage/, and answers; it shares the
server's database engine. FastAPI validates parameters (422 names them) and publishes the
OpenAPI document at /api/openapi.json.
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from core.checkpoints import CheckpointError
from core.predict import PredictionInputError
from core.recsys.serving import MAX_LIMIT, Recommendation, UnknownUser
from storage import DataHome, StorageError, shared_engine
from storage.db import schema_version
from storage.recsys import active_run, load_serving
from storage.repository import get_run, session_scope
from storage.runs import run_predictor

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many items (1-100).")]


class Item(BaseModel):
    rank: int
    item_id: str
    score: float
    why: str = Field(description="What the user's profile shares with the item.")
    details: dict[str, Any] = Field(description="The item's own fields (name, type, ...).")


class Recommendations(BaseModel):
    user_id: str | None
    engine: str = Field(description="two_tower, content or popularity.")
    reason: str = Field(description="Why this engine served the request.")
    run_id: int | None
    items: list[Item]


class ProfileRequest(BaseModel):
    profile: dict[str, str] = Field(
        description="User fields, e.g. skills 'python;ml', interests 'ai', bio, location."
    )
    limit: int = Field(10, ge=1, le=MAX_LIMIT)
    filters: dict[str, str] = Field(default_factory=dict, description="e.g. type: job")


class PredictRequest(BaseModel):
    run_id: int
    rows: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=10_000,
        description="Feature rows (the dataset's columns; date and ticker for sequences).",
    )


class Health(BaseModel):
    status: str
    schema_version: int
    active_recommender: int | None


def _context() -> tuple[DataHome, Any]:
    home = DataHome.from_env().ensure()
    return home, shared_engine(home.database_url)


def _answer(result: Recommendation, run_id: int | None) -> Recommendations:
    fields = [c for c in result.items.columns if c not in ("rank", "item_id", "score", "why")]
    return Recommendations(
        user_id=result.user_id,
        engine=result.engine,
        reason=result.reason,
        run_id=run_id,
        items=[
            Item(
                rank=int(row["rank"]),
                item_id=str(row["item_id"]),
                score=float(row["score"]),
                why=str(row["why"]),
                details={c: row[c] for c in fields},
            )
            for row in result.items.to_dict("records")
        ],
    )


TOKEN_ENV = "TRENDLAB_API_TOKEN"
bearer = HTTPBearer(auto_error=False)


def require_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """With TRENDLAB_API_TOKEN set, every route needs `Authorization: Bearer <token>`."""
    expected = os.environ.get(TOKEN_ENV)
    if not expected:
        return
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


def create_api() -> FastAPI:
    api = FastAPI(
        title="Trendlab API",
        version="1",
        description="Recommendations and market-model predictions from the Trendlab server.",
        dependencies=[Depends(require_token)],
    )

    @api.get("/health")
    def health() -> Health:
        _, engine = _context()
        return Health(
            status="ok",
            schema_version=schema_version(engine),
            active_recommender=active_run(engine=engine),
        )

    @api.get("/recommendations/startups/for-developer/{user_id}")
    def for_developer(
        user_id: str,
        limit: Limit = 10,
        engine_name: Annotated[
            str, Query(alias="engine", pattern="^(auto|two_tower|content|popularity)$")
        ] = "auto",
        type: Annotated[str | None, Query(description="collaboration, job, investment")] = None,
        sector: str | None = None,
        stage: str | None = None,
        location: str | None = None,
    ) -> Recommendations:
        """Seed 004's endpoint: the top startups for a known developer, routed by history."""
        home, engine = _context()
        filters = {
            k: v
            for k, v in {
                "type": type,
                "sector": sector,
                "stage": stage,
                "location": location,
            }.items()
            if v
        }
        try:
            recommender = load_serving(engine=engine, home=home)
            result = recommender.recommend(
                user_id, limit=limit, engine=engine_name, filters=filters
            )
        except UnknownUser as error:
            raise HTTPException(404, str(error)) from None
        except StorageError as error:
            raise HTTPException(503, str(error)) from None
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return _answer(result, active_run(engine=engine))

    @api.post("/recommendations")
    def for_profile(request: ProfileRequest) -> Recommendations:
        """A new user described by a profile: content-based (the cold-start route)."""
        home, engine = _context()
        try:
            recommender = load_serving(engine=engine, home=home)
            result = recommender.recommend_profile(
                request.profile, limit=request.limit, filters=request.filters
            )
        except StorageError as error:
            raise HTTPException(503, str(error)) from None
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return _answer(result, active_run(engine=engine))

    @api.post("/predict")
    def predict(request: PredictRequest) -> dict[str, Any]:
        """Scores of a market model's run for feature rows (the Predictor path)."""
        import pandas as pd

        _, engine = _context()
        with session_scope(engine) as session:
            if get_run(session=session, run_id=request.run_id) is None:
                raise HTTPException(404, f"No run {request.run_id}.")
        try:
            predictor = run_predictor(engine=engine, run_id=request.run_id)
        except (StorageError, CheckpointError) as error:  # unfinished, missing or altered
            raise HTTPException(409, str(error)) from None
        try:
            table = predictor.predict_frame(pd.DataFrame(request.rows))
        except PredictionInputError as error:
            raise HTTPException(422, str(error)) from None
        table = table.astype(object).where(table.notna(), None)
        return {
            "run_id": request.run_id,
            "model": predictor.spec.name,
            "predictions": table.to_dict("records"),
        }

    return api
