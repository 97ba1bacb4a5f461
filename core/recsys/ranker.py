"""The learned second stage: candidates from several engines, ranked by a gradient-boosted
LambdaRank model (LightGBM) that learned from validation interactions how to order them.

Retrieval: each of the two-tower model, EASE, item-kNN and popularity (those a run has)
proposes its ``CANDIDATES`` best items among those the user has not met. Ranking: every
candidate gets, per engine, its score standardised over the user's unmasked catalogue and its
place in that engine's list (``CANDIDATES`` when the engine did not propose it), beside what
the history says about the item and the user (``Context``: how often the item was chosen,
how often in the last ``RECENT_DAYS`` days before the history's last event, days since it was
last chosen; how many items the user has, days since their last event). On the time split the
recent counts are what popularity alone misses; on the random split the engines' agreement.

The ranker is fitted on validation users (engines fitted on training events read the
training history; labels are the users' validation items), with a fifth of those users held
out for early stopping; at test and serving the same engines read the longer history. Items
outside the candidates rank below every candidate. Stored as JSON holding LightGBM's text
model, never a pickle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import lightgbm
import numpy as np
import pandas as pd
from scipy import sparse

from core.recsys.catalogue import Catalogue

Scorer = Callable[[np.ndarray], np.ndarray]

CANDIDATES = 50
"""Items each engine proposes per user."""
RECENT_DAYS = 30
OUTSIDE = -1e9
"""The score of an item no engine proposed: below every candidate's."""
ROUNDS = 400
EARLY_STOPPING = 30
HELD_OUT = 0.2
"""Share of the validation users kept for the ranker's early stopping."""


@dataclass(frozen=True)
class Context:
    """Item and user statistics of a history (the events the engines read)."""

    item_events: np.ndarray
    item_recent: np.ndarray
    item_idle_days: np.ndarray
    user_events: np.ndarray
    user_idle_days: np.ndarray

    @classmethod
    def of(cls, catalogue: Catalogue, events: pd.DataFrame) -> Context:
        """Statistics of ``events`` (user_id, item_id, timestamp rows) up to their last one."""
        users, items = catalogue.codes(events)
        times = pd.to_datetime(events["timestamp"]).to_numpy()
        end = times.max() if len(times) else np.datetime64("1970-01-01")
        days = ((end - times) / np.timedelta64(1, "D")).astype(np.float64)
        recent = days <= RECENT_DAYS
        n_items, n_users = len(catalogue.item_ids), len(catalogue.user_ids)
        never = days.max() + 1.0 if len(days) else 0.0
        item_idle = np.full(n_items, never)
        np.minimum.at(item_idle, items, days)
        user_idle = np.full(n_users, never)
        np.minimum.at(user_idle, users, days)
        return cls(
            item_events=np.log1p(np.bincount(items, minlength=n_items)).astype(np.float32),
            item_recent=np.log1p(np.bincount(items[recent], minlength=n_items)).astype(np.float32),
            item_idle_days=np.log1p(item_idle).astype(np.float32),
            user_events=np.log1p(np.bincount(users, minlength=n_users)).astype(np.float32),
            user_idle_days=np.log1p(user_idle).astype(np.float32),
        )


def feature_names(engines: tuple[str, ...]) -> list[str]:
    return [
        *(f"{engine}_{kind}" for engine in engines for kind in ("score", "place")),
        "item_events",
        "item_recent",
        "item_idle_days",
        "user_events",
        "user_idle_days",
    ]


@dataclass
class Candidates:
    """A block of users' candidates: ``rows`` (the block position of each candidate's user),
    ``items`` and ``features``, grouped by user in block order."""

    rows: np.ndarray
    items: np.ndarray
    features: np.ndarray


def candidates(
    scorers: Mapping[str, Scorer], users: np.ndarray, exclude: np.ndarray, context: Context
) -> Candidates:
    """Each engine's ``CANDIDATES`` best unmasked items for ``users`` (``exclude``: their
    (users, items) mask), merged per user, with their features."""
    n_users, n_items = exclude.shape
    keep = min(CANDIDATES, n_items)
    scores, places = [], []
    proposed = np.zeros((n_users, n_items), dtype=bool)
    for name in scorers:
        block = np.asarray(scorers[name](users), dtype=np.float64)  # (users, items)
        block[exclude] = np.nan
        mean = np.nanmean(block, axis=1, keepdims=True)
        spread = np.nanstd(block, axis=1, keepdims=True)
        standard = (block - mean) / np.where(spread > 0, spread, 1.0)
        ranked = np.where(exclude, -np.inf, block)
        top = np.argpartition(-ranked, keep - 1, axis=1)[:, :keep]
        order = np.argsort(-np.take_along_axis(ranked, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        place = np.full((n_users, n_items), float(CANDIDATES), dtype=np.float32)
        np.put_along_axis(place, top, np.arange(keep, dtype=np.float32)[None, :], axis=1)
        proposed[np.arange(n_users)[:, None], top] = True
        scores.append(standard)
        places.append(place)
    proposed &= ~exclude
    rows, items = np.nonzero(proposed)  # grouped by user, in block order
    engine_features = [
        column[rows, items] for pair in zip(scores, places, strict=True) for column in pair
    ]
    user_rows = users[rows]
    features = np.column_stack(
        [
            *engine_features,
            context.item_events[items],
            context.item_recent[items],
            context.item_idle_days[items],
            context.user_events[user_rows],
            context.user_idle_days[user_rows],
        ]
    ).astype(np.float32)
    return Candidates(rows, items, np.nan_to_num(features, nan=0.0))


class SecondStage:
    """A LambdaRank booster over the candidates of ``engines``."""

    def __init__(self, engines: tuple[str, ...], booster: lightgbm.Booster) -> None:
        self.engines, self.booster = tuple(engines), booster

    @classmethod
    def fit(
        cls,
        scorers: Mapping[str, Scorer],
        users: np.ndarray,
        relevant: list[set[int]],
        seen: sparse.csr_matrix,
        context: Context,
        *,
        seed: int = 0,
        threads: int = 2,
        block: int = 512,
    ) -> SecondStage:
        """Learn to order the candidates of ``scorers`` (engine name -> scorer over the
        history the engines were fitted on) for ``users`` (catalogue rows) whose held-out
        items are ``relevant``; ``seen`` masks what they have met."""
        engines = tuple(scorers)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for start in range(0, len(users), block):
            rows = users[start : start + block]
            found = candidates(
                {name: scorers[name] for name in engines},
                rows,
                seen[rows].toarray() > 0,
                context,
            )
            wanted = relevant[start : start + block]
            labels = np.array(
                [item in wanted[row] for row, item in zip(found.rows, found.items, strict=True)],
                dtype=np.float32,
            )
            parts.append((found.rows + start, found.features, labels))
        owner = np.concatenate([p[0] for p in parts])
        features = np.concatenate([p[1] for p in parts])
        labels = np.concatenate([p[2] for p in parts])
        useful = np.zeros(len(users), dtype=bool)  # users with a relevant candidate
        useful[np.unique(owner[labels > 0])] = True
        if not useful.any():
            raise ValueError("no validation user has a held-out item among the candidates")
        rng = np.random.default_rng(seed)
        held = rng.random(len(users)) < HELD_OUT
        if not (useful & held).any() or not (useful & ~held).any():
            held = np.zeros(len(users), dtype=bool)  # too few users to hold any out
        sets = {}
        for name, chosen in (("train", useful & ~held), ("held", useful & held)):
            mask = chosen[owner]
            if not mask.any():
                continue
            groups = np.bincount(owner[mask], minlength=len(users))
            sets[name] = lightgbm.Dataset(
                features[mask],
                labels[mask],
                group=groups[groups > 0],
                feature_name=feature_names(engines),
                free_raw_data=True,
            )
        params = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_data_in_leaf": 50,
            "feature_fraction": 0.9,
            "lambdarank_truncation_level": 20,
            "num_threads": threads,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        held_out = [sets["held"]] if "held" in sets else []
        booster = lightgbm.train(
            params,
            sets["train"],
            num_boost_round=ROUNDS if held_out else ROUNDS // 4,
            valid_sets=held_out,
            callbacks=[lightgbm.early_stopping(EARLY_STOPPING, verbose=False)] if held_out else [],
        )
        return cls(engines, booster)

    def scorer(
        self, scorers: Mapping[str, Scorer], seen: sparse.csr_matrix, context: Context
    ) -> Scorer:
        """(users, items) scores: the ranker's for each user's candidates, ``OUTSIDE`` for
        the rest; ``scorers`` read the history ``seen`` and ``context`` describe."""
        missing = [name for name in self.engines if name not in scorers]
        if missing:
            raise ValueError(f"the second stage needs the engines {', '.join(missing)}")
        chosen = {name: scorers[name] for name in self.engines}

        def score(users: np.ndarray) -> np.ndarray:
            users = np.asarray(users)
            found = candidates(chosen, users, seen[users].toarray() > 0, context)
            result = np.full((len(users), seen.shape[1]), OUTSIDE, dtype=np.float64)
            if len(found.items):
                predicted = self.booster.predict(found.features, num_iteration=self._rounds())
                result[found.rows, found.items] = predicted
            return result

        return score

    def _rounds(self) -> int | None:
        best = self.booster.best_iteration
        return best if best and best > 0 else None

    def importance(self) -> dict[str, float]:
        """Each feature's share of the total gain."""
        gains = self.booster.feature_importance(importance_type="gain")
        total = float(gains.sum()) or 1.0
        return {
            name: float(gain) / total
            for name, gain in zip(self.booster.feature_name(), gains, strict=True)
        }

    def to_json(self) -> str:
        return json.dumps(
            {
                "engines": list(self.engines),
                "candidates": CANDIDATES,
                "booster": self.booster.model_to_string(num_iteration=self._rounds()),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SecondStage:
        stored = json.loads(text)
        return cls(tuple(stored["engines"]), lightgbm.Booster(model_str=stored["booster"]))
