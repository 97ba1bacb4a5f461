"""Built datasets, registered with their recipe in ``datasets``, their rows stored as tables.

A dataset's rows live in the table ``Dataset.table_name`` (``dataset_<id>``): the name comes
from the integer key, never from user input, so it is safe to place in SQL or a file name.

- DuckDB (the default): a table in the database file, written in the same transaction as the
  registration row, so a failure leaves neither behind; ``delete_dataset`` removes both.
- PostgreSQL (a team's shared metadata): a Parquet file ``features/<table>.parquet`` in the
  data home, which every process (servers, CLIs, workers) reads without a database lock. It
  is written (to a temporary name, then renamed) before the registration row commits; if that
  transaction fails, the file is an orphan no row names, and ids are never reused.

Both are read through DuckDB, so a frame comes back with the same types either way
(``storage.tables``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from storage.db import StorageError
from storage.models import Dataset
from storage.repository import (
    create_dataset,
    get_dataset,
    list_datasets,
)
from storage.tables import read_table, write_table

KEY_COLUMNS = ("date", "ticker")


def frame_hash(frame: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and every value, independent of the row index."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[c, str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def recipe_key(recipe: dict[str, Any]) -> str:
    return json.dumps(recipe, sort_keys=True, default=str)


def find_dataset_by_recipe(*, session: Session, recipe: dict[str, Any]) -> Dataset | None:
    """A stored dataset built from exactly this recipe, so it can be reused, or None."""
    key = recipe_key(recipe)
    return next((d for d in list_datasets(session=session) if recipe_key(d.recipe) == key), None)


def store_dataset(
    *,
    session: Session,
    name: str,
    kind: str,
    source: str,
    frame: pd.DataFrame,
    features: list[str],
    recipe: dict[str, Any],
) -> Dataset:
    """Register ``frame`` under ``name`` and store its rows as a DuckDB table."""
    missing = [c for c in (*KEY_COLUMNS, *features) if c not in frame.columns]
    if missing:
        raise StorageError(f"Dataset {name!r} lacks the columns {', '.join(missing)}.")
    if frame.empty:
        raise StorageError(f"Dataset {name!r} has no rows; nothing was stored.")
    dates = pd.to_datetime(frame["date"])
    dataset = create_dataset(
        session=session,
        name=name,
        kind=kind,
        source=source,
        tickers=sorted(frame["ticker"].astype(str).unique()),
        features=list(features),
        row_count=len(frame),
        content_hash=frame_hash(frame),
        start_date=dates.min().date(),
        end_date=dates.max().date(),
        recipe=recipe,
    )
    write_table(session=session, table=dataset.table_name, frame=frame)
    return dataset


def load_dataset_frame(
    *, session: Session, name: str, columns: Sequence[str] | None = None, single: bool = False
) -> pd.DataFrame:
    """The stored rows of a dataset, ordered by ticker then date; ``columns``: only these
    (and date and ticker); ``single``: float columns as float32 (training and evaluation,
    which compute in float32: half the memory of a large universe)."""
    dataset = get_dataset(session=session, name=name)
    if dataset is None:
        known = ", ".join(d.name for d in list_datasets(session=session)) or "none yet"
        raise StorageError(f"No dataset named {name!r}; known datasets: {known}.")
    wanted = None if columns is None else list(dict.fromkeys(["date", "ticker", *columns]))
    frame = read_table(
        session=session,
        table=dataset.table_name,
        order="ticker, date",
        columns=wanted,
        single=single,
    )
    if frame is None:
        raise StorageError(
            f"Dataset {name!r} is registered but its rows (table {dataset.table_name}) are "
            "missing; delete it and build it again."
        )
    return frame


RAW_PARTS = ("prices", "headlines", "policy_events", "macro_series", "oracle")
"""The raw inputs kept beside a market dataset's rows (``{table}_{part}``), so an update can
rebuild its features from everything it was made from."""


def store_raw_inputs(
    *, session: Session, dataset: Dataset, parts: dict[str, pd.DataFrame | None]
) -> None:
    """Keep a market dataset's raw inputs (parts that are None or empty are not stored)."""
    for part, frame in parts.items():
        if part not in RAW_PARTS:
            raise StorageError(f"{part!r} is not a raw input of a market dataset.")
        if frame is not None and not frame.empty:
            write_table(session=session, table=f"{dataset.table_name}_{part}", frame=frame)


def load_raw_inputs(*, session: Session, dataset: Dataset) -> dict[str, pd.DataFrame | None]:
    """The raw inputs kept for ``dataset``; StorageError when it was stored before they were
    kept (its prices are missing)."""
    parts = {
        part: read_table(session=session, table=f"{dataset.table_name}_{part}", order="date")
        for part in RAW_PARTS
    }
    if parts["prices"] is None:
        raise StorageError(
            f"Dataset {dataset.name!r} was stored before Trendlab kept raw inputs beside the "
            "features, so it cannot be updated; build or import it again."
        )
    return parts
