"""Recommender data from CSV or Parquet: interactions, and optionally users and items.

Interactions need ``user_id``, ``item_id``, ``timestamp`` and either ``interaction`` (an
event type) or ``rating``. ``events`` maps the file's values to seed 004's types
(``watched=view,bought=apply``; ratings too: ``1=dislike,3=click,5=favorite``); values that
already are seed types pass unchanged. Users and items files need their id column; every
other column becomes a profile field (roles inferred by ``core.recsys.features``). Any item
domain works, not only startups.

Problems are collected over all files and reported together with file, line and column, as
for market data; nothing is built when any exists.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.files import file_sha256
from core.recsys.data import INTERACTION_LABELS
from core.recsys.synthetic import RecsysData
from core.tables import ImportFailed, Problem, ProblemLog, ReadOptions, read_table

INTERACTION_COLUMNS = ("user_id", "item_id", "interaction", "rating", "timestamp")


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


def import_recsys(
    interactions: Path,
    *,
    users: Path | None = None,
    items: Path | None = None,
    mapping: dict[str, str] | None = None,
    events: dict[str, str] | None = None,
    options: ReadOptions | None = None,
) -> RecsysData:
    options = options or ReadOptions()
    events = events or {}
    log = ProblemLog()
    table = read_table(interactions, options, mapping)
    frame = pd.DataFrame()
    event_column = "interaction" if "interaction" in table.frame.columns else "rating"
    if table.require(["user_id", "item_id", "timestamp", event_column]):
        raw = table.text(event_column).str.lower()
        kinds = raw.map(lambda value: events.get(value, value))
        table.flag(
            ~kinds.isin(list(INTERACTION_LABELS)),
            event_column,
            lambda i: (
                f"{raw.iloc[i]!r} is not an interaction type ("
                + ", ".join(INTERACTION_LABELS)
                + "); map it with --events value=type"
            ),
        )
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
            profiles[key] = _typed(profile.frame.assign(**{key: ids}))
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
    }
    interactions_frame = frame.sort_values(["timestamp", "user_id"], ignore_index=True)
    return RecsysData(user_frame, item_frame, interactions_frame, recipe)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns whose every value is a number become numbers; the rest stay text."""
    result = frame.copy()
    for column in result.columns:
        numbers = pd.to_numeric(result[column], errors="coerce")
        if numbers.notna().all() and not column.endswith("_id"):
            result[column] = numbers.astype(float)
    return result
