"""What the route modules share: the data home and database a handler answers from, and how
an answer is made safe to send (messages cut short, values JSON can carry)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Engine

from services.database import DataHome, data_home, database


@dataclass(frozen=True)
class RequestContext:
    """What a handler answers from: the data home and the server's database engine."""

    home: DataHome
    engine: Engine


def request_context() -> RequestContext:
    """The context of one request (a dependency: tests override it with
    ``app.dependency_overrides[request_context]``)."""
    home = data_home()
    return RequestContext(home, database(home))


Context = Annotated[RequestContext, Depends(request_context)]
"""A handler's parameter ``ctx: Context`` receives the request's context."""


def plain(value: Any) -> Any:
    """``value`` with NaN and infinities as null: JSON cannot carry them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def short(text: str, limit: int = 300) -> str:
    """A message as answered: the server's paths written relative to its data home, and cut
    short (what a client sent may appear in it, and may be 100 kB)."""
    text = DataHome.from_env().without_root(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
