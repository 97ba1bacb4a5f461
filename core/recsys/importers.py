"""Recommender data from the files people have: interactions, and optionally users and items.

Files are CSV (comma, tab, semicolon or bar separated: sniffed from the header, or given),
Parquet, or RecBole atomic files (``.inter``, ``.user``, ``.item``: tab separated, headers
``name:type``). An ``.inter`` file given alone brings the ``.user`` and ``.item`` files of the
same name beside it. Atomic ``token_seq`` fields (space-separated tokens, e.g. genres) become
';'-separated lists, ``float`` fields numbers, ``token`` fields text.

Interactions need ``user_id`` and ``item_id``; ``timestamp`` (ISO 8601, Unix seconds or Unix
milliseconds; one format per column, detected) is optional. A log without one (a play-count
file: user, artist, plays) imports with every event at one instant (``NO_TIME``), its repeats
of a (user, item) merged with their weights summed, and the recipe saying so
(``recipe["timestamps"]`` False): such a dataset trains on the random split only
(``core.recsys.data.check_split`` refuses the others). What a row means comes from its
columns:

- ``interaction``: an event type of seed 004 (or one ``events`` maps to one);
- ``rating``: with ``events`` or ``positive_threshold``, as they say; with neither, every
  rating is one positive interaction (``like``), the way RecBole reads a ratings file, and
  the recipe says so (``events_read_as``);
- neither: a log of implicit feedback, every row one ``purchase``.

``events`` maps the file's values to seed types (``watched=view``; ratings too:
``1=dislike,3=click,5=favorite``); values that already are seed types pass unchanged.
``positive_threshold`` reads ratings the field's usual way (RecBole keeps ratings from 3 up,
many papers from 4 up): a rating at or above it is a positive (``like``), one below is left
out, as if never given; ``events`` may still name types for values below it (``1=dislike``).
Kept as explicit negatives instead, low ratings teach a pointwise model that rated (popular)
items are negatives, and every model ranks worse for it.

Real logs carry rows that are no event of a known user, and the import leaves them out and
counts them (``recipe["left_out"]``), refusing nothing for them: rows without a user or an
item (anonymous orders), cancellations (an invoice or order number starting with ``C``, as
in the UCI Online Retail log), and rows whose weight column (``quantity``, ``count``,
``plays`` or ``weight``: kept as ``amount``) is 0 or negative (returns). Rows repeating a
(user, item, timestamp) are one event: merged, their amounts summed, the strongest type kept
(``recipe["merged_repeats"]`` counts the rows merged away). A user buying the same item again
at another time stays a second event; the recommender reads distinct (user, item) pairs
(``core.recsys.data.distinct_pairs``). Gzip-compressed files (``.gz``) read as they are.
Users and items files need their id column; every other column becomes a profile field (roles
inferred by ``core.recsys.features``). Any item domain works, not only startups.

Problems are collected over all files and reported together with file, line and column, as
for market data; nothing is built when any exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.files import file_sha256
from core.import_problems import ImportFailed, Problem
from core.recsys.data import INTERACTION_LABELS
from core.recsys.synthetic import RecsysData
from core.table_files import ReadOptions
from core.user_tables import ProblemLog, Table, read_table

INTERACTION_COLUMNS = ("user_id", "item_id", "interaction", "rating", "timestamp")
POSITIVE = "like"
"""The type ``positive_threshold`` gives ratings at or above it."""
BELOW = "_below_threshold"
"""Marks the rows a positive threshold leaves out."""


def below_reason(threshold: float | None) -> str:
    """How the output counts the ratings a positive threshold leaves out."""
    return f"ratings below {threshold:g} (the positive threshold)" if threshold else "ratings"


IMPLICIT = "purchase"
"""The type of every row of a log with neither a rating nor an interaction column."""
AMOUNT_COLUMNS = ("weight", "quantity", "count", "plays")
"""Column names read as a row's weight (kept as ``amount``); rows of 0 or below are left out.
Any of them is also a ``--map`` target: ``--map weight=userArtistPlays``."""
MAPPABLE = (*INTERACTION_COLUMNS, *AMOUNT_COLUMNS)
"""The names a column of an interactions file can be mapped to."""
NO_TIME = pd.Timestamp("1970-01-01")
"""The instant every event of a log without timestamps is read at."""
INVOICE_COLUMNS = ("invoiceno", "invoice_no", "invoice", "order_id", "orderid")
"""Column names read as an order number; one starting with C is a cancellation."""


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
    frame, found = pd.DataFrame(), _EventLog()
    if table.require(["user_id", "item_id"]):
        frame, found = _events(table, events, positive_threshold)
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
            ids = _integral_ids(profile.text(key))
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
        "events_read_as": found.read_as,
        "amount_column": found.amount_column,
        "left_out": found.left_out,
        "below_threshold": found.left_out.get(below_reason(positive_threshold), 0),
        "merged_repeats": found.merged,
        "timestamps": "timestamp" in table.frame.columns,
        "timestamp_format": table.date_formats.get("timestamp"),
        "separator": table.separator,
    }
    interactions_frame = frame.sort_values(["timestamp", "user_id"], ignore_index=True)
    return RecsysData(user_frame, item_frame, interactions_frame, recipe)


@dataclass
class _EventLog:
    """What reading the interactions found beside the events: how rows were read, what was
    left out and why, how many repeated rows were merged."""

    read_as: str = ""
    amount_column: str | None = None
    left_out: dict[str, int] = field(default_factory=dict)
    merged: int = 0


def _events(
    table: Table, events: dict[str, str], threshold: float | None
) -> tuple[pd.DataFrame, _EventLog]:
    """The interactions file's events: typed, the rows that are no event left out and
    counted, repeats of a (user, item, timestamp) merged."""
    found = _EventLog()
    columns = table.frame.columns
    user, item = (_integral_ids(table.frame[c]) for c in ("user_id", "item_id"))
    keep = pd.Series(True, index=table.frame.index)

    def leave_out(mask: pd.Series, reason: str) -> None:
        dropped = mask & keep
        if dropped.any():
            found.left_out[reason] = found.left_out.get(reason, 0) + int(dropped.sum())
        keep[dropped] = False

    leave_out((user == "") | (item == ""), "rows without a user or an item")
    invoice = next((c for c in columns if c in INVOICE_COLUMNS), None)
    if invoice is not None:
        leave_out(table.frame[invoice].str.upper().str.startswith("C"), "cancellations")
    found.amount_column = next((c for c in columns if c in AMOUNT_COLUMNS), None)
    amount = None
    if found.amount_column is not None:
        raw = table.frame[found.amount_column]
        amount = pd.to_numeric(raw, errors="coerce")
        table.flag(
            keep & amount.isna() & (raw != ""),
            found.amount_column,
            lambda i: f"{raw.iloc[i]!r} is not a number",
        )
        leave_out(amount <= 0, f"rows with {found.amount_column} 0 or below (returns)")
        amount = amount.fillna(1.0)
    if "interaction" in columns or ("rating" in columns and (events or threshold is not None)):
        column = "interaction" if "interaction" in columns else "rating"
        kinds = _event_types(table, column, events, threshold, keep)
        leave_out(kinds == BELOW, below_reason(threshold))
        found.read_as = (
            f"ratings of {threshold:g} and up as positives (like)"
            if threshold is not None and column == "rating"
            else f"{column} values as event types"
        )
    elif "rating" in columns:
        rating = pd.to_numeric(table.frame["rating"], errors="coerce")
        table.flag(
            keep & rating.isna(),
            "rating",
            lambda i: f"{table.frame['rating'].iloc[i]!r} is not a number",
        )
        kinds = pd.Series(POSITIVE, index=table.frame.index)
        found.read_as = (
            "every rating as one positive interaction (like), as RecBole reads ratings; "
            "--positive-threshold 4 keeps only ratings of 4 and up, --events maps values"
        )
    else:
        kinds = pd.Series(IMPLICIT, index=table.frame.index)
        found.read_as = (
            "every row as one purchase (no rating or interaction column: implicit feedback)"
        )
    times = (
        table.dates("timestamp", keep_time=True)
        if "timestamp" in columns
        else pd.Series(NO_TIME, index=table.frame.index)
    )
    frame = pd.DataFrame(
        {"user_id": user, "item_id": item, "interaction": kinds, "timestamp": times}
    )
    if amount is not None:
        frame["amount"] = amount.astype(float)
    frame = frame[keep].reset_index(drop=True)
    found.merged = int(frame.duplicated(["user_id", "item_id", "timestamp"]).sum())
    if found.merged:
        frame = _merge_repeats(frame)
    return frame, found


def _merge_repeats(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item, timestamp): the strongest type, the amounts summed."""
    strength = frame["interaction"].map(
        {kind: rank for rank, kind in enumerate(reversed(INTERACTION_LABELS))}
    )
    ordered = frame.assign(_strength=strength).sort_values("_strength", kind="stable")
    keys = ["user_id", "item_id", "timestamp"]
    merged = ordered.groupby(keys, as_index=False, sort=False).agg(
        interaction=("interaction", "last"),
        **({"amount": ("amount", "sum")} if "amount" in frame.columns else {}),
    )
    return merged[frame.columns]


def _integral_ids(values: pd.Series) -> pd.Series:
    """Ids written as whole numbers with a decimal point (``17850.0``, as a spreadsheet or
    pandas writes an integer column with gaps) read as the integers, so a log's ids meet its
    profile files'; other ids are kept as written."""
    present = values[values != ""]
    if len(present) and present.str.fullmatch(r"[0-9]+\.0+").all():
        return values.str.replace(r"\.0+$", "", regex=True)
    return values


def _event_types(
    table: Table,
    column: str,
    events: dict[str, str],
    threshold: float | None,
    keep: pd.Series,
) -> pd.Series:
    """Each row's seed type: ``events`` first, then the rating against ``threshold`` (when
    given), else the value itself; rows that end in no known type are problems."""
    raw = table.frame[column].str.lower()
    table.flag(keep & (raw == ""), column, lambda _: "missing value")
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
        keep & ~kinds.isin([*INTERACTION_LABELS, BELOW]) & (raw != ""),
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
