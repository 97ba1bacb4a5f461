"""Interaction labels, splits and the pointwise training set (seed 004, step 1).

Labels and weights by interaction type follow the seed. Its dislike weight of -1.0 marks an
explicit negative; a negative weight inside a weighted BCE would push the score *up*, so the
loss uses label 0 with weight |w| = 1.0 (as strong as a click), and sampled negatives get
label 0 with weight 1.0.

A test item is *relevant* to a user when the user's interaction with it has a label of at
least ``RELEVANT_MIN_LABEL`` (0.6: click or stronger). Views (0.4) are exposure more than
preference, and dislikes are negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

INTERACTION_LABELS: dict[str, tuple[float, float]] = {  # type: (label, weight)
    "purchase": (1.0, 3.0),
    "apply": (1.0, 3.0),
    "interest": (1.0, 3.5),
    "favorite": (0.9, 2.5),
    "like": (0.8, 2.0),
    "click": (0.6, 1.0),
    "view": (0.4, 0.5),
    "dislike": (0.0, -1.0),
}
NEGATIVE_SAMPLE = "negative_sample"
RELEVANT_MIN_LABEL = 0.6


def labelled(interactions: pd.DataFrame) -> pd.DataFrame:
    """Interactions with their label and (signed, as in the seed) weight."""
    unknown = sorted(set(interactions["interaction"]) - set(INTERACTION_LABELS))
    if unknown:
        raise ValueError(
            f"unknown interaction type(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(INTERACTION_LABELS)}"
        )
    kinds = interactions["interaction"]
    return interactions.assign(
        label=kinds.map({k: label for k, (label, _) in INTERACTION_LABELS.items()}).astype(float),
        weight=kinds.map({k: weight for k, (_, weight) in INTERACTION_LABELS.items()}).astype(
            float
        ),
    )


def distinct_pairs(interactions: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item), as the recommender learns and is judged: dated by the pair's
    first event, typed by its strongest (highest label), with ``events`` counting its rows.
    A log where a customer buys the same product again (a third of the online-retail rows)
    would otherwise put the pair in training and test at once, where the test copy is masked
    as seen; one event per pair (ratings, the synthetic data) passes unchanged."""
    if not interactions.duplicated(["user_id", "item_id"]).any():
        return interactions.assign(events=1)
    label = interactions["interaction"].map({k: v[0] for k, v in INTERACTION_LABELS.items()})
    ordered = interactions.assign(_label=label).sort_values(
        ["_label", "timestamp"], ascending=[False, True], kind="stable"
    )
    keys = ["user_id", "item_id"]
    pairs = ordered.groupby(keys, as_index=False, sort=False).agg(
        interaction=("interaction", "first"),
        timestamp=("timestamp", "min"),
        events=("interaction", "size"),
        **({"amount": ("amount", "sum")} if "amount" in interactions.columns else {}),
    )
    return pairs.sort_values(["timestamp", "user_id", "item_id"], ignore_index=True)


@dataclass
class Split:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


SPLITS = ("time", "user", "random")


def check_split(split: str, recipe: dict, dataset: str = "this dataset") -> None:
    """Refuse a split the data cannot support: the time and per-user splits order events by
    time, and a log imported without timestamps (``recipe["timestamps"]`` False) has none."""
    if split != "random" and recipe.get("timestamps") is False:
        raise ValueError(
            f"{dataset} was imported without a timestamp column, so the {split!r} split "
            "(which orders events by time) cannot be drawn; use split 'random' "
            "(--split random)"
        )


def split_interactions(
    interactions: pd.DataFrame,
    *,
    by: str = "time",
    fractions: tuple[float, float] | None = None,
    seed: int = 0,
) -> Split:
    """By time: the earliest 70 % of events train, the next 15 % validate, the last 15 % test
    (one global clock, so no event in a later segment precedes one in an earlier segment).
    Per user: each user's own events in time order, cut at the same fractions.
    Random: each user's events in a random order (drawn from ``seed``), cut 80/10/10 with
    RecBole's rounding: a segment that would get a fraction of an event gets one while the
    user keeps more than one training event, validation after test."""
    if by not in SPLITS:
        raise ValueError(f"split by {' or '.join(map(repr, SPLITS))}, not {by!r}")
    fractions = fractions or ((0.8, 0.1) if by == "random" else (0.7, 0.15))
    ordered = interactions.sort_values(["timestamp", "user_id", "item_id"], ignore_index=True)
    train_end, val_end = fractions[0], fractions[0] + fractions[1]
    if by == "random":
        return _random_split(ordered, fractions, seed)
    if by == "time":
        position = np.arange(len(ordered)) / len(ordered)
    else:
        rank = ordered.groupby("user_id").cumcount()
        size = ordered.groupby("user_id")["user_id"].transform("size")
        position = (rank / size).to_numpy()
    return Split(
        ordered[position < train_end].reset_index(drop=True),
        ordered[(position >= train_end) & (position < val_end)].reset_index(drop=True),
        ordered[position >= val_end].reset_index(drop=True),
    )


def _random_split(ordered: pd.DataFrame, fractions: tuple[float, float], seed: int) -> Split:
    """RecBole's ``RS`` split grouped by user in random order (``_calcu_split_ids``)."""
    rng = np.random.default_rng(seed)
    shuffled = ordered.assign(_key=rng.random(len(ordered))).sort_values(
        ["user_id", "_key"], kind="stable", ignore_index=True
    )
    size = shuffled.groupby("user_id")["user_id"].transform("size").to_numpy()
    rank = shuffled.groupby("user_id").cumcount().to_numpy()
    val_share, test_share = fractions[1], round(1 - fractions[0] - fractions[1], 12)
    val = np.floor(val_share * size + 1e-9).astype(int)
    test = np.floor(test_share * size + 1e-9).astype(int)
    train = size - val - test
    for share, count in ((test_share, test), (val_share, val)):  # the last segment first
        bump = (train > 1) & (share * size > 0) & (share * size < 1)
        count += bump
        train -= bump
    segment = np.where(rank < train, 0, np.where(rank < train + val, 1, 2))
    parts = [
        shuffled[segment == s]
        .drop(columns="_key")
        .sort_values(["timestamp", "user_id", "item_id"], ignore_index=True)
        for s in range(3)
    ]
    return Split(*parts)


def seen_keys(matrix: sparse.csr_matrix) -> np.ndarray:
    """Sorted ``user * items + item`` keys of a (users, items) matrix's non-zero cells."""
    coo = matrix.tocoo()
    return np.sort(coo.row.astype(np.int64) * matrix.shape[1] + coo.col)


def contains(keys: np.ndarray, users: np.ndarray, items: np.ndarray, width: int) -> np.ndarray:
    """Whether each (user, item) is among ``keys`` (from ``seen_keys``)."""
    wanted = np.asarray(users, dtype=np.int64) * width + np.asarray(items, dtype=np.int64)
    found = np.searchsorted(keys, wanted)
    return (found < len(keys)) & (keys[np.minimum(found, len(keys) - 1)] == wanted)


def sample_negatives(
    users: np.ndarray, seen: sparse.csr_matrix, rng: np.random.Generator, keys: np.ndarray
) -> np.ndarray:
    """An item for each entry of ``users`` drawn uniformly from the items that user has not
    interacted with (``seen``, whose ``seen_keys`` are ``keys``); -1 for a user who has met
    every item. Rejection sampling: a few rounds redraw the draws that hit a seen item."""
    width = seen.shape[1]
    items = rng.integers(width, size=len(users))
    open_users = np.diff(seen.indptr)[users] < width
    items[~open_users] = -1
    pending = np.flatnonzero(open_users)
    for _ in range(200):
        hit = pending[contains(keys, users[pending], items[pending], width)]
        if len(hit) == 0:
            break
        items[hit] = rng.integers(width, size=len(hit))
        pending = hit
    else:  # a user who has met nearly every item: give up on the draws still seen
        items[pending[contains(keys, users[pending], items[pending], width)]] = -1
    return items


def training_pairs(
    interactions: pd.DataFrame,
    item_ids: list[str],
    *,
    negatives_per_positive: int = 2,
    min_interactions: int = 1,
    seed: int = 0,
) -> pd.DataFrame:
    """(user_id, item_id, interaction, label, weight) rows: every labelled interaction of
    users with at least ``min_interactions``, plus ``negatives_per_positive`` sampled
    negatives per interaction with a positive label, drawn uniformly from the items the user
    has not interacted with."""
    rng = np.random.default_rng(seed)
    events = labelled(interactions)
    counts = events.groupby("user_id")["item_id"].transform("size")
    events = events[counts >= min_interactions]
    user_ids = pd.Index(sorted(set(events["user_id"])))
    catalogue = pd.Index(item_ids)
    users = user_ids.get_indexer(events["user_id"])
    seen = sparse.csr_matrix(
        (np.ones(len(events)), (users, catalogue.get_indexer(events["item_id"]))),
        shape=(len(user_ids), len(catalogue)),
    )
    wanted = np.repeat(users, np.where(events["label"].to_numpy() > 0, negatives_per_positive, 0))
    drawn = sample_negatives(wanted, seen, rng, seen_keys(seen))
    negatives = pd.DataFrame(
        {
            "user_id": user_ids[wanted[drawn >= 0]],
            "item_id": catalogue[drawn[drawn >= 0]],
            "interaction": NEGATIVE_SAMPLE,
            "label": 0.0,
            "weight": 1.0,
        }
    )
    columns = ["user_id", "item_id", "interaction", "label", "weight"]
    return pd.concat([events[columns], negatives], ignore_index=True)


def label_distribution(pairs: pd.DataFrame) -> pd.DataFrame:
    """Rows per label with their share, highest label first (the seed's printout)."""
    counts = pairs.groupby("label").size().sort_index(ascending=False)
    return pd.DataFrame(
        {"label": counts.index, "rows": counts.to_numpy(), "share": counts.to_numpy() / len(pairs)}
    )


def relevant_items(interactions: pd.DataFrame) -> dict[str, set[str]]:
    """Per user, the items of interactions labelled at least ``RELEVANT_MIN_LABEL``."""
    events = labelled(interactions)
    events = events[events["label"] >= RELEVANT_MIN_LABEL]
    return {user: set(group["item_id"]) for user, group in events.groupby("user_id")}
