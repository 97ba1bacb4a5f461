"""The recommender's routes: startups for a known developer, for a new user's profile, and
how the serving run's engines compare."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError

from api.schemas import Item, ProfileRequest, Recommendations
from api.shared import Context, plain, short
from core.recsys.engines import AUTO, ENGINES
from core.recsys.serving import MAX_LIMIT, Recommendation, UnknownUser
from services.database import StorageError
from services.recsys.serving import active_run, recommender_report, serving

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many items (1-100).")]

router = APIRouter()


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


@router.get("/recommendations/startups/for-developer/{user_id}")
def for_developer(
    ctx: Context,
    user_id: str,
    limit: Limit = 10,
    engine_name: Annotated[
        str,
        Query(
            alias="engine",
            max_length=40,
            description="'auto' (routed by history) or an engine that serves "
            "(GET /recommendations/engines lists the serving run's engines, each marked "
            "served or judged only)",
        ),
    ] = AUTO,
    type: Annotated[str | None, Query(description="collaboration, job, investment")] = None,
    sector: str | None = None,
    stage: str | None = None,
    location: str | None = None,
) -> Recommendations:
    """Seed 004's endpoint: the top startups for a known developer, routed by history."""
    served = [name for name, entry in ENGINES.items() if entry.served]  # read per request
    if engine_name != AUTO and engine_name not in served:
        known = ", ".join([AUTO, *served])
        problem = {"type": "enum", "loc": ("query", "engine"), "input": engine_name}
        raise RequestValidationError([{**problem, "msg": f"Input should be one of {known}"}])
    home, engine = ctx.home, ctx.engine
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
        served = serving(engine=engine, home=home)
        result = served.recommender.recommend(
            user_id, limit=limit, engine=engine_name, filters=filters
        )
    except UnknownUser as error:
        raise HTTPException(404, short(str(error))) from None
    except StorageError as error:
        raise HTTPException(503, short(str(error))) from None
    except ValueError as error:
        raise HTTPException(422, short(str(error))) from None
    return _answer(result, served.run_id)


@router.get("/recommendations/engines")
def engines(ctx: Context) -> dict[str, Any]:
    """The serving run's engines on its test users: every metric with its 95 % interval,
    the paired verdict of the two-tower model against each other engine, the second stage's
    against each, and which engine serves warm and hot users, and why."""
    engine = ctx.engine
    run_id = active_run(engine=engine)
    if run_id is None:
        raise HTTPException(404, "No recommender is trained yet.")
    try:
        report = recommender_report(engine=engine, run_id=run_id)
    except StorageError as error:
        raise HTTPException(503, short(str(error))) from None
    return plain(
        {
            "run_id": run_id,
            "primary_metric": report.get("primary_metric"),
            "engines": {
                name: {
                    "served": name in ENGINES and ENGINES[name].served,
                    "metrics": figures,
                    "intervals": report.get("intervals", {}).get("all_users", {}).get(name),
                    "verdict": report.get("comparison", {}).get("against", {}).get(name),
                }
                for name, figures in report["all_users"].items()
            },
            "comparison": report.get("comparison"),
            "ranker_comparison": report.get("ranker_comparison"),
            "serve": report.get("serve"),
        }
    )


@router.post("/recommendations")
def for_profile(ctx: Context, request: ProfileRequest) -> Recommendations:
    """A new user described by a profile: content-based (the cold-start route)."""
    home, engine = ctx.home, ctx.engine
    try:
        served = serving(engine=engine, home=home)
        result = served.recommender.recommend_profile(
            request.profile, limit=request.limit, filters=request.filters
        )
    except StorageError as error:
        raise HTTPException(503, short(str(error))) from None
    except ValueError as error:
        raise HTTPException(422, short(str(error))) from None
    return _answer(result, served.run_id)
