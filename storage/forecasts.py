"""Forecasts: keyword-only repository functions over the ``forecasts`` table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage.models import Forecast


def replace_forecasts(
    *,
    session: Session,
    run_id: int,
    dataset_id: int,
    dataset_hash: str,
    as_of: dt.date,
    rows: Iterable[dict[str, Any]],
) -> int:
    """Store a run's forecasts as of ``as_of``, in place of any it made as of that date
    before (forecasting twice on the same data gives the same rows); returns how many."""
    session.execute(delete(Forecast).where(Forecast.run_id == run_id, Forecast.as_of == as_of))
    stored = [
        Forecast(
            run_id=run_id, dataset_id=dataset_id, dataset_hash=dataset_hash, as_of=as_of, **row
        )
        for row in rows
    ]
    session.add_all(stored)
    return len(stored)


def list_forecasts(
    *, session: Session, run_id: int, as_of: dt.date | None = None
) -> list[Forecast]:
    """A run's forecasts (as of one date, or all), by as-of date, horizon and ticker."""
    query = select(Forecast).where(Forecast.run_id == run_id)
    if as_of is not None:
        query = query.where(Forecast.as_of == as_of)
    order = (Forecast.as_of, Forecast.horizon, Forecast.ticker)
    return list(session.scalars(query.order_by(*order)))


def latest_as_of(*, session: Session, run_id: int) -> dt.date | None:
    """The newest as-of date of a run's forecasts, or None when it has made none."""
    return session.scalar(select(func.max(Forecast.as_of)).where(Forecast.run_id == run_id))
