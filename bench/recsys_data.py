"""Generated recommender benchmark data with the shapes and statistics of the field's two
classic movie-rating sets, written as RecBole atomic files so importing them is part of
every benchmark.

``python -m bench.recsys_data SHAPE FOLDER`` writes ``FOLDER/SHAPE.inter``, ``.user`` and
``.item`` (tab separated, ``name:type`` headers, Unix-second timestamps), for

- ``ml100k-shape``: 943 users x 1,682 items x 100,000 ratings (MovieLens 100K's size);
- ``ml1m-shape``: 6,040 users x 3,706 items x 1,000,000 ratings (MovieLens 1M's size).

What is planted, and how it was sized (no real rating is read; the targets are the published
summary statistics of the MovieLens sets):

- tastes: users and items have 16 hidden factors; a user picks items with probability
  proportional to exp(TASTE * <p_u, q_i> + b_i), drawn without replacement (Gumbel top-k).
- long-tailed item popularity: b_i ~ Normal(0, POPULARITY_SPREAD) (log-normal weights): a
  few items draw a large share of the ratings, most items few.
- heavy-tailed user activity: every user rates at least 20 items (as in MovieLens), the rest
  is shared out in proportion to log-normal(0, ACTIVITY_SPREAD) weights, at most 45 % of the
  catalogue per user.
- ratings 1-5 follow each pair's taste and the item's quality (more popular items are rated
  somewhat higher, as in MovieLens), cut at the quantiles of MovieLens' rating shares (6, 11,
  27, 34, 22 %).
- profiles carry part of the signal: each of 18 genres has a direction in taste space, and an
  item's genres are those its factors point to most (1-3, with noise); a user's age moves
  their first factor; occupation, gender and zip code carry none. Titles are 1-4 pseudo-words
  (one of them tied to the first genre a third of the time) and the release year.
- time: each user arrives at a uniform time over the set's span (MovieLens 100K's seven
  months, 1M's three years) and rates over an exponential number of days (mean 30).

The same seed writes the same files; generation holds at most a block of 512 users x items
scores at once.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Shape:
    users: int
    items: int
    interactions: int
    start: int
    """First Unix second of the ratings."""
    end: int
    """Last Unix second of the ratings."""


SHAPES = {
    "ml100k-shape": Shape(943, 1682, 100_000, 874_724_710, 893_286_638),
    "ml1m-shape": Shape(6040, 3706, 1_000_000, 956_703_932, 1_046_454_590),
}
FACTORS = 16
TASTE = 1.6
POPULARITY_SPREAD = 1.6
ACTIVITY_SPREAD = 1.0
MIN_PER_USER = 20
MAX_SHARE = 0.45
RATING_SHARES = (0.06, 0.11, 0.27, 0.34, 0.22)
_GENRE_NAMES = (
    "Action Adventure Animation Children Comedy Crime Documentary Drama Fantasy Film-Noir "
    "Horror Musical Mystery Romance Sci-Fi Thriller War Western"
)
GENRES = tuple(_GENRE_NAMES.split())
_OCCUPATION_NAMES = (
    "administrator artist doctor educator engineer entertainment executive healthcare "
    "homemaker lawyer librarian marketing none other programmer retired salesman scientist "
    "student technician writer"
)
OCCUPATIONS = tuple(_OCCUPATION_NAMES.split())
BLOCK = 512


def _words(rng: np.random.Generator, count: int) -> np.ndarray:
    """Pronounceable pseudo-words, distinct."""
    consonants, vowels = list("bcdfghjklmnprstvz"), list("aeiou")
    words: set[str] = set()
    while len(words) < count:
        size = int(rng.integers(2, 4))
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(size)))
    return np.array(sorted(words))


def generate(shape: Shape, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The interactions, users and items of ``shape`` as frames with atomic headers."""
    rng = np.random.default_rng(seed)
    tastes = rng.normal(0, 1 / np.sqrt(FACTORS), (shape.users, FACTORS))
    factors = rng.normal(0, 1, (shape.items, FACTORS))
    age = np.clip(rng.gamma(6.0, 5.5, shape.users) + 7, 7, 73).round()
    tastes[:, 0] += 0.4 * (age - 33) / 12 / np.sqrt(FACTORS)
    popularity = rng.normal(0, POPULARITY_SPREAD, shape.items)

    # items: genres from the factors, quality tied to popularity, a year and a title
    directions = rng.normal(0, 1, (len(GENRES), FACTORS))
    leaning = factors @ directions.T / np.sqrt(FACTORS) + rng.normal(0, 0.6, (shape.items, 18))
    genre_count = rng.choice([1, 2, 3], size=shape.items, p=[0.45, 0.35, 0.2])
    ranked = np.argsort(-leaning, axis=1)
    vocabulary = _words(rng, 3000)
    genre_words = vocabulary[:90].reshape(18, 5)
    titles, classes = [], []
    for item in range(shape.items):
        mine = ranked[item, : genre_count[item]]
        classes.append(" ".join(GENRES[g] for g in sorted(mine)))
        words = list(rng.choice(vocabulary[90:], size=int(rng.integers(1, 5))))
        if rng.random() < 1 / 3:
            words[0] = rng.choice(genre_words[mine[0]])
        titles.append(" ".join(w.capitalize() for w in words))
    year = (1998 - np.minimum(rng.exponential(7, shape.items), 78)).astype(int)
    quality = 0.35 * popularity / POPULARITY_SPREAD + rng.normal(0, 0.5, shape.items)

    # activity: at least 20 each, the rest by heavy-tailed weights, capped
    cap = int(MAX_SHARE * shape.items)
    weights = rng.lognormal(0, ACTIVITY_SPREAD, shape.users)
    counts = MIN_PER_USER + rng.multinomial(
        shape.interactions - MIN_PER_USER * shape.users, weights / weights.sum()
    )
    while (counts > cap).any():
        excess = int((counts - cap).clip(min=0).sum())
        counts = np.minimum(counts, cap)
        room = np.flatnonzero(counts < cap)
        np.add.at(counts, rng.choice(room, size=excess, p=weights[room] / weights[room].sum()), 1)

    # choices (Gumbel top-k without replacement) and their affinity, a block of users at once
    users, items, affinity = [], [], []
    for start in range(0, shape.users, BLOCK):
        rows = np.arange(start, min(start + BLOCK, shape.users))
        logits = TASTE * tastes[rows] @ factors.T + popularity[None, :]
        order = np.argsort(-(logits + rng.gumbel(size=logits.shape)), axis=1)
        for row, user in enumerate(rows):
            chosen = order[row, : counts[user]]
            users.append(np.full(len(chosen), user))
            items.append(chosen)
            affinity.append(tastes[user] @ factors[chosen].T)
    user = np.concatenate(users)
    item = np.concatenate(items)
    taste = np.concatenate(affinity)
    taste = (taste - taste.mean()) / taste.std()
    bias = rng.normal(0, 0.5, shape.users)
    latent = 1.0 * taste + quality[item] + bias[user] + rng.normal(0, 0.8, len(user))
    cuts = np.quantile(latent, np.cumsum(RATING_SHARES)[:-1])
    rating = 1 + np.searchsorted(cuts, latent)

    span = shape.end - shape.start
    arrival = rng.uniform(shape.start, shape.end, shape.users)
    stay = np.minimum(rng.exponential(30 * 86400, shape.users), span)
    arrival = np.minimum(arrival, shape.end - stay)
    when = arrival[user] + rng.random(len(user)) * stay[user]

    inter = pd.DataFrame(
        {
            "user_id:token": user + 1,
            "item_id:token": item + 1,
            "rating:float": rating,
            "timestamp:float": when.astype(np.int64),
        }
    ).sort_values(["user_id:token", "timestamp:float"], ignore_index=True)
    zips = rng.integers(10000, 99999, shape.users)
    users_frame = pd.DataFrame(
        {
            "user_id:token": np.arange(1, shape.users + 1),
            "age:float": age.astype(int),
            "gender:token": np.where(rng.random(shape.users) < 0.71, "M", "F"),
            "occupation:token": rng.choice(OCCUPATIONS, size=shape.users),
            "zip_code:token": zips,
        }
    )
    items_frame = pd.DataFrame(
        {
            "item_id:token": np.arange(1, shape.items + 1),
            "movie_title:token_seq": titles,
            "release_year:token": year,
            "class:token_seq": classes,
        }
    )
    return {"inter": inter, "user": users_frame, "item": items_frame}


def write(name: str, folder: Path, seed: int = 0) -> Path:
    """Write the atomic files of shape ``name`` into ``folder``; returns the .inter path."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, frame in generate(SHAPES[name], seed).items():
        frame.to_csv(folder / f"{name}.{suffix}", sep="\t", index=False)
    return folder / f"{name}.inter"


def describe(inter: pd.DataFrame) -> dict[str, float]:
    """The statistics the shapes are sized by, to compare with the published ones."""
    per_user = inter.groupby(inter.columns[0]).size()
    per_item = inter.groupby(inter.columns[1]).size().sort_values(ascending=False)
    top = per_item.head(max(1, len(per_item) // 10)).sum() / len(inter)
    return {
        "users": float(len(per_user)),
        "items_rated": float(len(per_item)),
        "ratings": float(len(inter)),
        "user_min": float(per_user.min()),
        "user_median": float(per_user.median()),
        "user_max": float(per_user.max()),
        "item_median": float(per_item.median()),
        "item_max": float(per_item.max()),
        "top_10pct_items_share": float(top),
        **{f"rating_{r}": float((inter.iloc[:, 2] == r).mean()) for r in range(1, 6)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shape", choices=sorted(SHAPES))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = write(args.shape, args.folder, args.seed)
    inter = pd.read_csv(path, sep="\t")
    for name, value in describe(inter).items():
        print(f"{name:>22} {value:,.3f}")


if __name__ == "__main__":
    main()
