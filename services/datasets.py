"""Storing the datasets users build or import: the write actions of the Data page, the CLI's
`data` and `recsys` commands, refused in a read-only deployment; the Data page's import of
uploaded files, staged in the data home's uploads folder only while they are read. (The demo
data that `trendlab serve` stores on a first start goes through ``services.demo``.) A market
dataset's features are built here and handed to storage as a frame. Also the context
coverage of a stored market dataset, which the Data page and `data show` report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.features import CONTEXT_FEATURE_GROUPS, FEATURES, MASK_COLUMNS
from core.market.importers import ImportOptions, import_market
from core.market.sources import MarketData, build_market_dataset
from core.recsys.synthetic import RecsysData
from services.access import ensure_writable
from services.catalog import DatasetInfo, dataset_frame
from storage import DataHome
from storage.db import StorageError
from storage.feature_store import find_dataset_by_recipe, store_dataset, store_raw_inputs
from storage.models import Dataset
from storage.recsys import save_recsys_dataset
from storage.repository import check_dataset_name, get_dataset, session_scope
from storage.uploads import staged_uploads

GROUPS = list(CONTEXT_FEATURE_GROUPS)


def store_market_dataset(
    *, engine: Engine, name: str, data: MarketData, config: DataConfig, description: str
) -> tuple[DatasetInfo, bool]:
    """Build features and labels and store them as ``name``; returns the dataset and whether
    an identical stored build was reused instead."""
    ensure_writable("building or importing datasets")
    dataset, reused = save_market_dataset(
        engine=engine, name=name, data=data, config=config, description=description
    )
    return DatasetInfo.of(dataset), reused


def import_market_uploads(
    *,
    home: DataHome,
    prices: Sequence[tuple[str, bytes]],
    news: tuple[str, bytes] | None = None,
    policy: tuple[str, bytes] | None = None,
    macro: tuple[str, bytes] | None = None,
    mapping: dict[str, str] | None = None,
    bundled_macro: bool = True,
    options: ImportOptions | None = None,
) -> tuple[MarketData, list[str]]:
    """Uploaded files, each a (name, content) pair, imported as ``import_market`` reads files
    (``ImportFailed`` lists every problem). They are staged in the home's uploads folder for
    the readers and removed again however the import ends; the uploads a killed process left
    go at the next start (``storage.uploads.remove_stale_uploads``)."""
    ensure_writable("building or importing datasets")
    others = {"news": news, "policy": policy, "macro": macro}
    files = {"prices": list(prices)} | {role: [f] for role, f in others.items() if f is not None}
    with staged_uploads(home, files) as folder:
        staged = {role: next((folder / role).iterdir()) for role in files if role != "prices"}
        return import_market(
            sorted((folder / "prices").iterdir()),
            **staged,
            mapping=mapping,
            options=options,
            bundled_macro=bundled_macro,
        )


def store_recsys_dataset(
    *, engine: Engine, name: str, data: RecsysData, description: str
) -> tuple[DatasetInfo, bool]:
    """Store users, items and interactions as ``name`` (an identical recipe is reused)."""
    ensure_writable("building or importing datasets")
    dataset, reused = save_recsys_dataset(
        engine=engine, name=name, data=data, description=description
    )
    return DatasetInfo.of(dataset), reused


def reused_sentence(asked: str, stored: str) -> str:
    """What storing data that is stored already says: under which name it is, and, when the
    user asked for another name, that no dataset of that name was created."""
    if asked == stored:
        return f"Dataset {stored!r} holds this data already; reused it."
    return (
        f"No dataset {asked!r} was created: the same data is stored as {stored!r}; use that name."
    )


@dataclass(frozen=True)
class ContextCoverage:
    """Share of a dataset's rows on which each context group (news, policy, macro) is
    observed (its mask is 1), overall, per ticker and per year; shares are in [0, 1]."""

    rows: int
    overall: dict[str, float]
    by_ticker: dict[str, dict[str, float]]
    by_year: dict[int, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "overall": self.overall,
            "by_ticker": self.by_ticker,
            "by_year": {str(year): shares for year, shares in self.by_year.items()},
        }

    def table(self, by: str) -> pd.DataFrame:
        """Shares as a frame: one row per ticker (``by="ticker"``) or year, one column per
        group."""
        rows = self.by_ticker if by == "ticker" else self.by_year
        return pd.DataFrame.from_dict(rows, orient="index", columns=GROUPS).rename_axis(by)


def context_coverage(*, engine: Engine, name: str) -> ContextCoverage:
    """How much of the stored market dataset ``name`` has each context group observed."""
    return coverage_of(dataset_frame(engine=engine, name=name))


def coverage_of(frame: pd.DataFrame) -> ContextCoverage:
    """The context coverage of a dataset frame (date, ticker and the ``mask_<group>``
    columns)."""
    masks = frame[MASK_COLUMNS].rename(columns=lambda c: c.removeprefix("mask_"))

    def shares(rows: pd.DataFrame) -> dict[str, float]:
        return {group: round(float(rows[group].mean()), 4) for group in GROUPS}

    years = pd.to_datetime(frame["date"]).dt.year.to_numpy()
    return ContextCoverage(
        rows=len(frame),
        overall=shares(masks),
        by_ticker={str(t): shares(rows) for t, rows in masks.groupby(frame["ticker"].to_numpy())},
        by_year={int(y): shares(rows) for y, rows in masks.groupby(years)},
    )


def save_market_dataset(
    *,
    engine: Engine,
    name: str,
    data: MarketData,
    config: DataConfig,
    description: str,
) -> tuple[Dataset, bool]:
    """Build ``data`` into a dataset and store it as ``name``; reuse a stored identical build.

    Returns the dataset and whether it was reused. The build runs outside any transaction
    (it is the slow part); registration and table are then written in one.
    """
    recipe = {**data.recipe, "data_config": config.to_dict()}
    check_dataset_name(name)  # before the build, which is the slow part
    with session_scope(engine) as session:
        existing = find_dataset_by_recipe(session=session, recipe=recipe)
        if existing is not None:
            return existing, True
        if get_dataset(session=session, name=name) is not None:
            raise StorageError(f"A dataset named {name!r} exists already; choose another name.")
    frame = build_market_dataset(data, config)
    with session_scope(engine) as session:
        dataset = store_dataset(
            session=session,
            name=name,
            kind=str(recipe.get("source", "custom")),
            source=description,
            frame=frame,
            features=FEATURES,
            recipe=recipe,
        )
        store_raw_inputs(session=session, dataset=dataset, parts=raw_parts(data))
    return dataset, False


def raw_parts(data: MarketData) -> dict[str, pd.DataFrame | None]:
    """What ``storage.feature_store.store_raw_inputs`` keeps of ``data``."""
    return {
        "prices": data.prices,
        "headlines": data.headlines,
        "policy_events": data.policy_events,
        "macro_series": data.macro_series,
        "oracle": data.oracle,
    }
