"""The API's request and response bodies (pydantic models FastAPI validates and documents)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from core.recsys.serving import MAX_LIMIT

MAX_RUN_ID = 2**63 - 1  # the database's BIGINT


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
    run_id: int = Field(ge=1, le=MAX_RUN_ID)
    rows: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=10_000,
        description="Feature rows (the dataset's columns; date and ticker for sequences).",
    )


class SweepRequest(BaseModel):
    """What `trendlab sweep --via-server` sends: the sweep to start on this server."""

    model: str = Field(max_length=100, description="A registered market model.")
    dataset: str = Field(max_length=200)
    trials: int = Field(8, ge=1, le=1000)
    parallel: int = Field(2, ge=1, le=64)
    space: dict[str, dict[str, Any]] | None = Field(
        None, description="Dotted path -> {low, high, log} or {choices}; default: suggested."
    )
    training: dict[str, Any] = Field(default_factory=dict, description="Partial training config.")
    architecture: dict[str, Any] = Field(default_factory=dict, description="Partial model config.")


class RunLabels(BaseModel):
    """What `trendlab runs name|tag` sends: a new name ('' clears it), tags to add and remove."""

    name: str | None = Field(None, max_length=80)
    add: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=50)
    remove: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=50)


class Health(BaseModel):
    status: str
    schema_version: int
    active_recommender: int | None
