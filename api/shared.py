"""What the route modules share: the data home and database a handler answers from, and how
an answer is made safe to send (messages cut short, values JSON can carry)."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Engine

from services.database import DataHome, data_home, database


def context() -> tuple[DataHome, Engine]:
    """The data home and the server's database engine, for one request."""
    home = data_home()
    return home, database(home)


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
