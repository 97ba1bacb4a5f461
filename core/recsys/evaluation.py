"""Evaluating the two-tower recommender beside its baselines: full-catalogue ranking of the
test users, every metric with a 95 % interval, and a paired verdict against each baseline.

Protocol (one for every engine): what an engine learns comes from the training events
(the two-tower model's weights, item-kNN's similarities, EASE's weights, BPR's factors,
popularity's counts); its settings are chosen on validation NDCG@10 (the two-tower model's
epoch, item-kNN's neighbours and shrinkage, EASE's lambda, BPR's epochs); at test, every
engine that reads a history reads the same one, training plus validation events, and those
items are masked. Relevant = test items with a label of at least ``RELEVANT_MIN_LABEL``.

Intervals come from a bootstrap over test users (``arch.bootstrap.IIDBootstrap``, 1,000
draws, percentile): users are the independent units, each one's metric a draw. The
comparison of two engines resamples the *same* users' paired differences, so what both find
easy or hard cancels. A verdict is "beats" when the 95 % interval of (model - baseline) lies
above 0, "worse" when it lies below, else "no evidence"; the headline compares the model
with the best baseline on NDCG@10.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from arch.bootstrap import IIDBootstrap
from scipy import sparse

from core.recsys.catalogue import Catalogue
from core.recsys.config import TwoTowerConfig
from core.recsys.data import Split
from core.recsys.engines import ENGINES, MODEL, PROFILE, SECOND_STAGE, title
from core.recsys.model import TwoTowerRecommender
from core.recsys.ranker import CANDIDATES, Context, SecondStage
from core.recsys.scoring import TowerScorer
from core.recsys.segments import PRIMARY, K, Scorer, Segment
from core.recsys.tuning import Tuning

LEVEL = 0.95
DRAWS = 1000


@dataclass
class Baselines:
    """The registry's tuned engines fitted on training events with their settings chosen on
    validation: each engine's scorer reads a history matrix given at scoring time."""

    engines: dict[str, Callable[[sparse.csr_matrix], Scorer]]
    settings: dict[str, dict[str, float]]
    skipped: dict[str, str]


def fit_baselines(
    catalogue: Catalogue,
    train: sparse.csr_matrix,
    validation: Segment,
    *,
    seed: int = 0,
    report: Callable[[str], None] | None = None,
) -> Baselines:
    """Every registered engine with a ``tune`` (popularity, item-kNN, EASE, BPR, content and
    any registered since), fitted on ``train`` (positive training events) with its settings
    chosen on validation NDCG@10; validation reads ``train`` as its history."""
    tuning = Tuning(catalogue, train, validation, seed, report or (lambda _: None))
    found = Baselines({}, {}, {})
    for name, entry in ENGINES.items():
        if entry.tune is None:
            continue
        tuned = entry.tune(tuning)
        found.engines[name] = tuned.build
        if tuned.settings:
            found.settings[name] = tuned.settings
    return found


def evaluate_recommender(
    model: TwoTowerRecommender,
    catalogue: Catalogue,
    split: Split,
    config: TwoTowerConfig,
    *,
    baselines: bool = True,
    seed: int = 0,
    report: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Test metrics of the two-tower model and the baselines with intervals, verdicts and
    the engine to serve: all users, and cold users (fewer than ``cold_max_interactions``
    events before the test period) on their own."""
    say = report or (lambda _: None)
    before = pd.concat([split.train, split.val], ignore_index=True)
    history = catalogue.history(before)
    train_history = catalogue.history(split.train)
    engines: dict[str, Callable[[], Scorer]] = {
        MODEL: lambda: TowerScorer(model, catalogue, history)
    }
    seen = catalogue.matrix(before)
    fitted, stage = None, None
    if baselines:
        validation = Segment(catalogue, split.val, catalogue.matrix(split.train))
        fitted = fit_baselines(catalogue, train_history.matrix, validation, seed=seed, report=say)
        for name, build in fitted.engines.items():
            engines[name] = lambda build=build: build(history.matrix)
        say("learning the second stage from the validation users")
        on_train = {
            MODEL: TowerScorer(model, catalogue, train_history),
            **{name: build(train_history.matrix) for name, build in fitted.engines.items()},
        }
        try:
            stage = SecondStage.fit(
                {
                    name: on_train[name]
                    for name in ENGINES
                    if ENGINES[name].proposes and name in on_train
                },
                validation.rows,
                validation.relevant,
                validation.seen,
                Context.of(catalogue, split.train),
                seed=seed,
            )
        except ValueError as err:
            fitted.skipped[SECOND_STAGE] = f"left out: {err}"
        else:
            context = Context.of(catalogue, before)
            engines[SECOND_STAGE] = lambda: stage.scorer(
                {name: engines[name]() for name in stage.engines}, seen, context
            )
            fitted.settings[SECOND_STAGE] = {
                "engines": ", ".join(stage.engines),
                "candidates": CANDIDATES,
                "rounds": stage.booster.current_iteration(),
            }
    counts = before.groupby("user_id").size()
    cold = {u for u in catalogue.user_ids if counts.get(u, 0) < config.cold_max_interactions}
    segments = {
        "all_users": Segment(catalogue, split.test, seen),
        "cold_users": Segment(catalogue, split.test, seen, users=cold),
    }
    means: dict[str, dict[str, dict[str, float]]] = {name: {} for name in segments}
    per_user: dict[str, dict[str, dict[str, np.ndarray]]] = {name: {} for name in segments}
    for name, build in engines.items():
        say(f"evaluating {name} on {len(segments['all_users'].rows):,} test users")
        scorer = build()
        for segment, users in segments.items():
            means[segment][name], per_user[segment][name] = users.figures(scorer)
    result: dict[str, Any] = {
        "k": K,
        "test_interactions": len(split.test),
        **means,
        "primary_metric": PRIMARY,
        "intervals": {s: intervals(per_user[s], seed=seed) for s in segments},
        "comparison": compare(per_user["all_users"], seed=seed, headline_skips=(SECOND_STAGE,)),
        "cold_comparison": compare(
            per_user["cold_users"], seed=seed, headline_skips=(SECOND_STAGE,)
        ),
        "ranker_comparison": compare(per_user["all_users"], model=SECOND_STAGE, seed=seed),
        "ranker_cold_comparison": compare(per_user["cold_users"], model=SECOND_STAGE, seed=seed),
        "settings": fitted.settings if fitted else {},
        "skipped": fitted.skipped if fitted else {},
        "protocol": (
            "every engine learns from training events, is tuned on validation NDCG@10, and "
            "reads training + validation events at test (masked); 95 % intervals by a "
            f"bootstrap over test users ({DRAWS} draws)"
        ),
    }
    if stage is not None:
        result["ranker_importance"] = stage.importance()
        result["ranker_model"] = stage.to_json()
    result["serve"] = serving_choice(result)
    result["serve_cold"] = serving_choice(result, "cold_users")
    return result


def _matrix(per_user: dict[str, dict[str, np.ndarray]], metric: str) -> tuple[list, np.ndarray]:
    engines = [e for e in per_user if metric in per_user[e] and len(per_user[e][metric])]
    if not engines:
        return [], np.zeros((0, 0))
    return engines, np.column_stack([per_user[e][metric] for e in engines])


def intervals(
    per_user: dict[str, dict[str, np.ndarray]], *, seed: int = 0
) -> dict[str, dict[str, list[float]]]:
    """Each engine's 95 % interval of each metric's mean over users (same draws for all)."""
    result: dict[str, dict[str, list[float]]] = {engine: {} for engine in per_user}
    metrics = next((list(v) for v in per_user.values() if v), [])
    for metric in metrics:
        engines, values = _matrix(per_user, metric)
        if len(values) < 2:
            continue
        bounds = IIDBootstrap(values, seed=seed).conf_int(
            lambda x: x.mean(axis=0), reps=DRAWS, method="percentile", size=LEVEL
        )
        for column, engine in enumerate(engines):
            result[engine][metric] = [float(bounds[0, column]), float(bounds[1, column])]
    return result


def verdict_word(low: float, high: float) -> str:
    return "beats" if low > 0 else "worse" if high < 0 else "no evidence"


def compare(
    per_user: dict[str, dict[str, np.ndarray]],
    *,
    model: str = MODEL,
    metric: str = PRIMARY,
    seed: int = 0,
    headline_skips: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The model against each other engine on ``metric``: the mean paired difference over
    the same users, its 95 % interval and the verdict; and the headline against the best
    (among the engines not in ``headline_skips``: the two-tower model's headline is against
    the baselines, not the second stage built on it)."""
    engines, values = _matrix(per_user, metric)
    if model not in engines or len(engines) < 2 or len(values) < 2:
        return {"metric": metric, "against": {}, "best_baseline": None, "verdict": None}
    column = engines.index(model)
    others = [e for e in engines if e != model]
    differences = values[:, [column]] - values[:, [engines.index(e) for e in others]]
    bounds = IIDBootstrap(differences, seed=seed).conf_int(
        lambda x: x.mean(axis=0), reps=DRAWS, method="percentile", size=LEVEL
    )
    against = {
        engine: {
            "difference": float(differences[:, i].mean()),
            "interval": [float(bounds[0, i]), float(bounds[1, i])],
            "verdict": verdict_word(bounds[0, i], bounds[1, i]),
        }
        for i, engine in enumerate(others)
    }
    means = values.mean(axis=0)
    rivals = [e for e in others if e not in headline_skips] or others
    best = max(rivals, key=lambda e: means[engines.index(e)])
    found = against[best]
    low, high = found["interval"]
    name = title(model)
    sentence = {
        "beats": f"{name} beats the best other engine, {best}, on {metric}",
        "worse": f"{name} is worse than the best other engine, {best}, on {metric}",
        "no evidence": (
            f"no evidence that {name} differs from the best other engine, {best}, on {metric}"
        ),
    }[found["verdict"]]
    return {
        "metric": metric,
        "users": len(values),
        "against": against,
        "best_baseline": best,
        "verdict": found["verdict"],
        "sentence": (
            f"{sentence}: {means[column]:.3f} against {means[engines.index(best)]:.3f}, "
            f"difference {found['difference']:+.3f} (95 % interval {low:+.3f} .. {high:+.3f}, "
            f"{len(values):,} test users)"
        ),
    }


def serving_choice(result: dict[str, Any], segment: str = "all_users") -> dict[str, str]:
    """The engine a tier of users gets, and why: the best on test NDCG@10 among those serving
    can rebuild (content too for cold users), the two-tower model on a tie; the second stage
    only where its paired verdict against that engine is "beats" (it costs every engine's
    scores, so a tie goes to the simpler engine). ``all_users`` picks for warm and hot users,
    ``cold_users`` for cold ones (on the online-retail time split content ranks cold users at
    0.005, popularity at 0.063, the two-tower model at 0.069)."""
    cold = segment != "all_users"
    figures = {
        engine: values[PRIMARY]
        for engine, values in result[segment].items()
        if engine in ENGINES
        and ENGINES[engine].served
        and (cold or ENGINES[engine].warm)
        and PRIMARY in values
        and values.get("users_evaluated", 1) > 0
    }
    single = {engine: figure for engine, figure in figures.items() if engine != SECOND_STAGE}
    if not single:
        return {"engine": PROFILE if cold else MODEL, "reason": ""}
    comparison = result["cold_comparison" if cold else "comparison"]
    chosen = max(single, key=lambda e: (single[e], e == MODEL))
    who = "cold test users" if cold else "test users"
    ranker = result.get("ranker_cold_comparison" if cold else "ranker_comparison") or {}
    ranker_verdict = ranker.get("against", {}).get(chosen, {})
    if SECOND_STAGE in figures and figures[SECOND_STAGE] > single[chosen]:
        low, high = ranker_verdict.get("interval", [float("nan")] * 2)
        sentence = (
            f"{title(SECOND_STAGE)} ranks at {figures[SECOND_STAGE]:.3f} against {chosen}'s "
            f"{single[chosen]:.3f} ({PRIMARY}, difference {low:+.3f} .. {high:+.3f})"
        )
        if ranker_verdict.get("verdict") == "beats":
            return {
                "engine": SECOND_STAGE,
                "reason": f"{sentence} on this run's {who}: it beats every engine alone",
            }
        note = f"; {sentence}, no evidence it is better, so the simpler engine serves"
    else:
        note = ""
    if chosen == MODEL:
        reason = (
            f"the two-tower model ranks best on this run's {who} ({PRIMARY} "
            f"{single[chosen]:.3f}; verdict against {comparison.get('best_baseline')}: "
            f"{comparison.get('verdict')})"
        )
    else:
        verdict = comparison.get("against", {}).get(chosen, {}).get("verdict")
        model = single.get(MODEL)
        against = f" against the two-tower model's {model:.3f}" if model is not None else ""
        reason = (
            f"{chosen} ranks best on this run's {who} ({PRIMARY} {single[chosen]:.3f}"
            f"{against}; the two-tower model's verdict against it: {verdict})"
        )
    return {"engine": chosen, "reason": reason + note}
