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

INTERACTION_LABELS: dict[str, tuple[float, float]] = {  # type: (label, weight)
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
    table = interactions["interaction"].map(INTERACTION_LABELS)
    return interactions.assign(
        label=[label for label, _ in table], weight=[weight for _, weight in table]
    )


@dataclass
class Split:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


def split_interactions(
    interactions: pd.DataFrame, *, by: str = "time", fractions: tuple[float, float] = (0.7, 0.15)
) -> Split:
    """By time: the earliest 70 % of events train, the next 15 % validate, the last 15 % test
    (one global clock, so no event in a later segment precedes one in an earlier segment).
    Per user: each user's own events in time order, cut at the same fractions."""
    if by not in ("time", "user"):
        raise ValueError(f"split by 'time' or 'user', not {by!r}")
    ordered = interactions.sort_values(["timestamp", "user_id", "item_id"], ignore_index=True)
    train_end, val_end = fractions[0], fractions[0] + fractions[1]
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
    catalogue = np.asarray(item_ids)
    negatives = []
    for user, group in events.groupby("user_id", sort=True):
        wanted = int((group["label"] > 0).sum()) * negatives_per_positive
        unseen = catalogue[~np.isin(catalogue, group["item_id"].to_numpy())]
        if wanted == 0 or len(unseen) == 0:
            continue
        drawn = rng.choice(unseen, size=min(wanted, len(unseen)), replace=False)
        negatives.append(
            pd.DataFrame(
                {
                    "user_id": user,
                    "item_id": drawn,
                    "interaction": NEGATIVE_SAMPLE,
                    "label": 0.0,
                    "weight": 1.0,
                }
            )
        )
    columns = ["user_id", "item_id", "interaction", "label", "weight"]
    return pd.concat([events[columns], *negatives], ignore_index=True)


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
