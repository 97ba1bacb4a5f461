"""A synthetic developers x startups market with a planted affinity (seed 004's scale).

Every user has hidden sector preferences (a Dirichlet draw), a preferred item type, skills,
a seniority and a location; every startup a sector, a stage, a type, required skills and a
location. What users write (bio) and startups write (description) is drawn from words tied
to those traits, so text carries the same signal as the structured fields. A user u's
affinity for item i is

    a(u, i) = 2.0 pref_u[sector_i] * n_sectors / 3 + 1.5 jaccard(skills_u, skills_i)
              + 0.8 [type_i = preferred type_u] + 0.4 [same location or either remote]
              + 0.3 stage fit (seniority vs stage) + 0.6 <h_u, h_i>

where h are 4-d hidden taste factors that no profile field shows (only interaction
patterns reveal them). Users choose items with probability proportional to
exp(1.6 a(u, i) + log popularity_i), popularity log-normal (sigma 1): a few startups draw
most views. Activity per user is log-normal too, so there are cold (< 5), warm and hot (> 20)
users. The interaction type of a (user, item) pair follows the affinity: the higher its
z-score among the user's chosen items, the likelier apply / interest / favorite; the lower,
the likelier view or dislike (at the user's mean: 38 % view, 22 % click, 12 % like, 10 %
favorite, 8 % apply, 7 % interest, 3 % dislike). One event per pair, timestamps uniform over a year.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

SECTORS = {
    "fintech": "payments banking lending ledger credit wallet",
    "healthtech": "clinical patients health diagnostics care telemedicine",
    "edtech": "learning students courses teaching classroom tutoring",
    "climate": "carbon energy solar emissions grid sustainability",
    "ai": "models inference llm agents vision training",
    "ecommerce": "shop checkout retail marketplace merchants orders",
    "gaming": "games players multiplayer studio engine esports",
    "biotech": "protein genomics lab drug molecules assays",
    "logistics": "shipping fleet warehouse delivery routing freight",
    "security": "threats encryption identity zero-trust audit compliance",
}
SKILLS = {
    "python": "fintech ai biotech",
    "javascript": "ecommerce edtech gaming",
    "go": "logistics security fintech",
    "rust": "security climate gaming",
    "ml": "ai healthtech biotech",
    "data": "fintech healthtech logistics",
    "devops": "security logistics ecommerce",
    "design": "edtech ecommerce gaming",
    "mobile": "healthtech edtech ecommerce",
    "embedded": "climate logistics healthtech",
}
TYPES = ("collaboration", "job", "investment")
STAGES = ("idea", "pre_seed", "seed", "series_a", "series_b", "growth")
SENIORITY = ("junior", "mid", "senior", "lead")
LOCATIONS = ("berlin", "london", "paris", "new_york", "san_francisco", "bangalore", "remote")
FILLER = [
    "team",
    "building",
    "product",
    "platform",
    "people",
    "growth",
    "mission",
    "early",
    "passionate",
]
INTERACTIONS = ("view", "click", "like", "favorite", "apply", "interest", "dislike")


@dataclass(frozen=True)
class RecsysSpec:
    """What to generate; the defaults are seed 004's scale."""

    users: int = 350
    items: int = 250
    interactions: int = 7500
    seed: int = 0
    days: int = 365


@dataclass
class RecsysData:
    """Users, items and interactions, with ids as strings and lists as ';'-joined text.

    users: user_id, skills, interests, seniority, location, years_experience, bio
    items: item_id, name, sector, stage, type, skills, location, team_size, description
    interactions: user_id, item_id, interaction, timestamp
    """

    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame
    recipe: dict


def _words(rng: np.random.Generator, pool: list[str], count: int) -> list[str]:
    return list(rng.choice(pool, size=count, replace=True))


def generate_recsys(spec: RecsysSpec = RecsysSpec()) -> RecsysData:
    rng = np.random.default_rng(spec.seed)
    sectors, skills = list(SECTORS), list(SKILLS)
    skill_sectors = {s: SKILLS[s].split() for s in skills}

    # Users.
    preference = rng.dirichlet(np.full(len(sectors), 0.4), size=spec.users)
    preferred_type = rng.integers(len(TYPES), size=spec.users)
    user_hidden = rng.normal(0, 1, (spec.users, 4)) / 2
    users, user_skills = [], []
    for u in range(spec.users):
        top = np.argsort(-preference[u])[:2]
        interests = [sectors[i] for i in top]
        weights = np.array(
            [sum(preference[u][sectors.index(x)] for x in skill_sectors[s]) for s in skills]
        )
        own = list(
            rng.choice(skills, size=rng.integers(2, 5), replace=False, p=weights / weights.sum())
        )
        user_skills.append(set(own))
        seniority = SENIORITY[min(int(rng.gamma(2.0, 0.8)), 3)]
        words = [w for sector in interests for w in _words(rng, SECTORS[sector].split(), 3)]
        words += own + _words(rng, FILLER, 4) + [TYPES[preferred_type[u]]]
        rng.shuffle(words)
        users.append(
            {
                "user_id": f"u{u:04d}",
                "skills": ";".join(own),
                "interests": ";".join(interests),
                "seniority": seniority,
                "location": LOCATIONS[rng.integers(len(LOCATIONS))],
                "years_experience": float(SENIORITY.index(seniority) * 3 + rng.integers(0, 4)),
                "bio": f"{seniority} developer: " + " ".join(words),
            }
        )

    # Items.
    item_hidden = rng.normal(0, 1, (spec.items, 4)) / 2
    popularity = rng.lognormal(0, 1.0, spec.items)
    items, item_skills, item_sector, item_type, item_stage = [], [], [], [], []
    for i in range(spec.items):
        sector = int(rng.integers(len(sectors)))
        kind = int(rng.integers(len(TYPES)))
        stage = int(rng.integers(len(STAGES)))
        fitting = [s for s in skills if sectors[sector] in skill_sectors[s]]
        required = set(
            rng.choice(fitting, size=min(len(fitting), rng.integers(1, 3)), replace=False)
        )
        required |= set(rng.choice(skills, size=rng.integers(0, 2), replace=False))
        item_skills.append(required)
        item_sector.append(sector)
        item_type.append(kind)
        item_stage.append(stage)
        words = _words(rng, SECTORS[sectors[sector]].split(), 5) + sorted(required)
        words += _words(rng, FILLER, 4)
        rng.shuffle(words)
        items.append(
            {
                "item_id": f"s{i:04d}",
                "name": f"{sectors[sector].capitalize()} startup {i}",
                "sector": sectors[sector],
                "stage": STAGES[stage],
                "type": TYPES[kind],
                "skills": ";".join(sorted(required)),
                "location": LOCATIONS[rng.integers(len(LOCATIONS))],
                "team_size": float(max(1, int(rng.lognormal(1.5 + 0.4 * stage, 0.5)))),
                "description": f"{TYPES[kind]} at a {STAGES[stage]} {sectors[sector]} startup: "
                + " ".join(words),
            }
        )
    users_frame, items_frame = pd.DataFrame(users), pd.DataFrame(items)

    # Affinity (users x items).
    sector_term = preference[:, item_sector] * len(sectors) / 3
    jaccard = np.array(
        [[len(a & b) / len(a | b) for b in item_skills] for a in user_skills], dtype=float
    )
    type_term = (preferred_type[:, None] == np.array(item_type)[None, :]).astype(float)
    user_location = users_frame["location"].to_numpy()[:, None]
    item_location = items_frame["location"].to_numpy()[None, :]
    location_term = (
        (user_location == item_location) | (user_location == "remote") | (item_location == "remote")
    ).astype(float)
    seniority_level = np.array([SENIORITY.index(u["seniority"]) for u in users])[:, None] / 3
    stage_level = np.array(item_stage)[None, :] / (len(STAGES) - 1)
    stage_fit = 1 - np.abs(seniority_level - stage_level)
    affinity = (
        2.0 * sector_term
        + 1.5 * jaccard
        + 0.8 * type_term
        + 0.4 * location_term
        + 0.3 * stage_fit
        + 0.6 * user_hidden @ item_hidden.T
    )

    # Interactions.
    activity = rng.lognormal(0, 0.9, spec.users)
    counts = 1 + rng.multinomial(spec.interactions - spec.users, activity / activity.sum())
    cap = spec.items // 2
    while (counts > cap).any():  # move what the most active users cannot take to others
        excess = int((counts - cap).clip(min=0).sum())
        counts = np.minimum(counts, cap)
        room = np.flatnonzero(counts < cap)
        np.add.at(counts, rng.choice(room, size=excess), 1)
    logits = 1.6 * affinity + np.log(popularity)[None, :]
    start = pd.Timestamp("2025-01-01")
    rows = []
    for u in range(spec.users):
        p = np.exp(logits[u] - logits[u].max())
        chosen = rng.choice(spec.items, size=counts[u], replace=False, p=p / p.sum())
        picked = affinity[u, chosen]
        z = (picked - picked.mean()) / (picked.std() + 1e-9) if len(chosen) > 1 else np.zeros(1)
        for item, score in zip(chosen, z, strict=True):
            rows.append(
                {
                    "user_id": users[u]["user_id"],
                    "item_id": items[item]["item_id"],
                    "interaction": _interaction(rng, score),
                    "timestamp": start + pd.Timedelta(seconds=int(rng.integers(spec.days * 86400))),
                }
            )
    interactions = pd.DataFrame(rows).sort_values(["timestamp", "user_id"], ignore_index=True)
    recipe = {"source": "synthetic_recsys", "generator_version": 1, **asdict(spec)}
    return RecsysData(users_frame, items_frame, interactions, recipe)


def _interaction(rng: np.random.Generator, z: float) -> str:
    """Stronger interactions for higher affinity z-scores (softmax over type levels)."""
    levels = np.array([0.0, 0.6, 1.1, 1.5, 2.0, 2.2, -1.2])  # view .. interest, dislike
    shares = np.array([0.38, 0.22, 0.12, 0.10, 0.08, 0.07, 0.03])  # at the user's mean
    logits = np.log(shares) + 1.0 * z * levels
    p = np.exp(logits - logits.max())
    return INTERACTIONS[int(rng.choice(len(INTERACTIONS), p=p / p.sum()))]
