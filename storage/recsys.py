"""Recommender datasets: a ``datasets`` row of kind ``recsys`` with three tables named from
its integer key (``dataset_<id>_users``, ``dataset_<id>_items``,
``dataset_<id>_interactions``), stored as the feature store stores tables (in the DuckDB file,
in the same transaction as the row, or as Parquet files beside a PostgreSQL database)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.recsys.synthetic import RecsysData
from storage.db import StorageError
from storage.feature_store import find_dataset_by_recipe, frame_hash
from storage.models import Dataset
from storage.repository import (
    RECOMMENDER_KIND,
    check_dataset_name,
    create_dataset,
    get_dataset,
    list_datasets,
    session_scope,
)
from storage.tables import read_table, write_table

KIND = RECOMMENDER_KIND
PARTS = ("users", "items", "interactions")


def save_recsys_dataset(
    *, engine: Engine, name: str, data: RecsysData, description: str
) -> tuple[Dataset, bool]:
    """Store users, items and interactions as ``name``; an identical recipe is reused."""
    check_dataset_name(name)  # before the build, which is the slow part
    with session_scope(engine) as session:
        existing = find_dataset_by_recipe(session=session, recipe=data.recipe)
        if existing is not None:
            return existing, True
        if get_dataset(session=session, name=name) is not None:
            raise StorageError(f"A dataset named {name!r} exists already; choose another name.")
        times = pd.to_datetime(data.interactions["timestamp"])
        dataset = create_dataset(
            session=session,
            name=name,
            kind=KIND,
            source=description,
            tickers=[],
            features=[],
            row_count=len(data.interactions),
            content_hash=frame_hash(data.interactions),
            start_date=times.min().date(),
            end_date=times.max().date(),
            recipe=data.recipe,
        )
        for part in PARTS:
            write_table(
                session=session, table=f"{dataset.table_name}_{part}", frame=getattr(data, part)
            )
        return dataset, False


def load_recsys_data(*, session: Session, name: str) -> RecsysData:
    dataset = get_dataset(session=session, name=name)
    if dataset is None or dataset.kind != KIND:
        known = ", ".join(d.name for d in list_datasets(session=session, recommender=True))
        raise StorageError(f"No recommender dataset named {name!r}; known: {known or 'none yet'}.")
    frames = {}
    order = {"users": "user_id", "items": "item_id", "interactions": "timestamp, user_id, item_id"}
    for part in PARTS:
        frame = read_table(session=session, table=f"{dataset.table_name}_{part}", order=order[part])
        if frame is None:
            raise StorageError(f"Dataset {name!r} is missing its {part} table; build it again.")
        frames[part] = frame
    return RecsysData(frames["users"], frames["items"], frames["interactions"], dataset.recipe)
