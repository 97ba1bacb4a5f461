"""Recommender data from the files people have: interactions, and optionally users and items.

Files are CSV (comma, tab, semicolon or bar separated: sniffed from the header, or given),
Parquet, or RecBole atomic files (``.inter``, ``.user``, ``.item``: tab separated, headers
``name:type``). An ``.inter`` file given alone brings the ``.user`` and ``.item`` files of the
same name beside it. Atomic ``token_seq`` fields (space-separated tokens, e.g. genres) become
';'-separated lists, ``float`` fields numbers, ``token`` fields text.

Interactions need ``user_id``, ``item_id``, ``timestamp`` (ISO 8601, Unix seconds or Unix
milliseconds; one format per column, detected) and either ``interaction`` (an event type) or
``rating``. ``events`` maps the file's values to seed 004's types (``watched=view``; ratings
too: ``1=dislike,3=click,5=favorite``); values that already are seed types pass unchanged.
``positive_threshold`` reads ratings the field's usual way (RecBole keeps ratings from 3 up,
many papers from 4 up): a rating at or above it is a positive (``like``), one below is left
out, as if never given (``recipe["below_threshold"]`` counts them); ``events`` may still name
types for values below it (``1=dislike``). Kept as explicit negatives instead, low ratings
teach a pointwise model that rated (popular) items are negatives, and every model ranks
worse for it.
Users and items files need their id column; every other column becomes a profile field (roles
inferred by ``core.recsys.features``). Any item domain works, not only startups.

Problems are collected over all files and reported together with file, line and column, as
for market data; nothing is built when any exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.files import file_sha256
from core.recsys.data import INTERACTION_LABELS
from core.recsys.synthetic import RecsysData
from core.tables import ImportFailed, Problem, ProblemLog, ReadOptions, Table, read_table

INTERACTION_COLUMNS = ("user_id", "item_id", "interaction", "rating", "timestamp")
POSITIVE = "like"
"""The type ``positive_threshold`` gives ratings at or above it."""
BELOW = "_below_threshold"
"""Marks the rows a positive threshold leaves out."""


def parse_events(text: str) -> dict[str, str]:
    """``watched=view,5=favorite`` -> {"watched": "view", "5": "favorite"}."""
    events = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        source, sep, target = part.partition("=")
        if not sep or not source.strip():
            raise ValueError(f"event mapping {part!r} is not of the form value=type")
        if target.strip() not in INTERACTION_LABELS:
            raise ValueError(
                f"event mapping {part!r}: {target.strip()!r} is not one of "
                + ", ".join(INTERACTION_LABELS)
            )
        events[source.strip().lower()] = target.strip()
    return events


def atomic_companions(interactions: Path) -> dict[str, Path]:
    """The ``.user`` and ``.item`` files beside a RecBole ``.inter`` file, where they exist."""
    path = Path(interactions)
    if path.suffix.lower() != ".inter":
        return {}
    found = {
        key: path.with_suffix(suffix) for key, suffix in (("users", ".user"), ("items", ".item"))
    }
    return {key: file for key, file in found.items() if file.is_file()}


def import_recsys(
    interactions: Path,
    *,
    users: Path | None = None,
    items: Path | None = None,
    mapping: dict[str, str] | None = None,
    events: dict[str, str] | None = None,
    positive_threshold: float | None = None,
    options: ReadOptions | None = None,
) -> RecsysData:
    options = options or ReadOptions()
    events = events or {}
    if users is None and items is None:
        companions = atomic_companions(interactions)
        users, items = companions.get("users"), companions.get("items")
    log = ProblemLog()
    table = read_table(interactions, options, mapping)
    frame = pd.DataFrame()
    event_column = "interaction" if "interaction" in table.frame.columns else "rating"
    if table.require(["user_id", "item_id", "timestamp", event_column]):
        kinds = _event_types(table, event_column, events, positive_threshold)
        frame = pd.DataFrame(
            {
                "user_id": table.text("user_id"),
                "item_id": table.text("item_id"),
                "interaction": kinds,
                "timestamp": table.dates("timestamp", keep_time=True),
            }
        )
        repeated = frame.duplicated(["user_id", "item_id", "timestamp"], keep="first")
        table.flag(repeated, None, lambda _: "the same (user_id, item_id, timestamp) appears twice")
    below = int((frame["interaction"] == BELOW).sum()) if not frame.empty else 0
    if below:
        frame = frame[frame["interaction"] != BELOW]
    log.extend(table)

    profiles = {}
    for path, key in ((users, "user_id"), (items, "item_id")):
        if path is None:
            continue
        try:
            profile = read_table(path, options)
        except ImportFailed as failure:  # go on, so one run reports every file's problems
            log.extend(failure)
            continue
        if profile.require([key]):
            ids = profile.text(key)
            profile.flag(
                ids.duplicated(),
                key,
                lambda i, key=key, ids=ids: f"{key} {ids.iloc[i]!r} appears twice",
            )
            if not frame.empty:
                unknown = sorted(set(frame[key]) - set(ids))
                if unknown:
                    shown = ", ".join(map(repr, unknown[:5]))
                    log.add(
                        Problem(
                            Path(interactions).name,
                            f"{len(unknown)} {key}(s) not in {profile.name}: {shown}",
                            column=key,
                        )
                    )
            profiles[key] = _typed(profile.frame.assign(**{key: ids}), profile.types)
        log.extend(profile)
    log.raise_if_any()

    user_frame = profiles.get("user_id", pd.DataFrame({"user_id": sorted(set(frame["user_id"]))}))
    item_frame = profiles.get("item_id", pd.DataFrame({"item_id": sorted(set(frame["item_id"]))}))
    recipe = {
        "source": "import_recsys",
        "files": {
            Path(p).name: file_sha256(Path(p))
            for p in (interactions, users, items)
            if p is not None
        },
        "mapping": mapping or {},
        "events": events,
        "positive_threshold": positive_threshold,
        "below_threshold": below,
        "timestamp_format": table.date_formats.get("timestamp"),
        "separator": table.separator,
    }
    interactions_frame = frame.sort_values(["timestamp", "user_id"], ignore_index=True)
    return RecsysData(user_frame, item_frame, interactions_frame, recipe)


def _event_types(
    table: Table, column: str, events: dict[str, str], threshold: float | None
) -> pd.Series:
    """Each row's seed type: ``events`` first, then the rating against ``threshold`` (when
    given), else the value itself; rows that end in no known type are problems."""
    raw = table.text(column).str.lower()
    kinds = raw.map(events).astype(raw.dtype)
    if threshold is not None:
        rating = pd.to_numeric(raw, errors="coerce")
        by_rating = pd.Series(np.where(rating >= threshold, POSITIVE, BELOW), index=raw.index)
        kinds = kinds.fillna(by_rating.where(rating.notna()))
    kinds = kinds.fillna(raw)
    if threshold is None:
        expected = "an interaction type (" + ", ".join(INTERACTION_LABELS) + ")"
    else:
        expected = f"a number to compare with the positive threshold {threshold:g}"
    table.flag(
        ~kinds.isin([*INTERACTION_LABELS, BELOW]) & (raw != ""),
        column,
        lambda i: f"{raw.iloc[i]!r} is not {expected}; map it with --events value=type",
    )
    return kinds


def _typed(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Profile columns as the model reads them: an atomic file's ``float`` fields are numbers,
    its ``token_seq`` fields ';'-separated lists, its ``token`` fields text; without declared
    types, columns whose every value is a number become numbers, the rest stay text."""
    result = frame.copy()
    for column in result.columns:
        kind = types.get(column)
        if column.endswith("_id") or kind == "token":
            continue
        if kind in ("token_seq", "float_seq"):
            result[column] = result[column].str.split().str.join(";")
            continue
        numbers = pd.to_numeric(result[column], errors="coerce")
        if kind == "float" or numbers.notna().all():
            result[column] = numbers.astype(float)
    return result
