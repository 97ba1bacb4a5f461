"""The kinds of training job, by name: each domain's run module exports its own
(``services.market.runs``, ``services.recsys.runs``, ``services.market.evaluation``) next
to the code it calls, and this table merges them.

The job manager (``services.jobs.manager``) and the worker (``services.jobs.worker``) look a
job's kind up here instead of branching on it, so a new kind of model is one more row. Which
kind trains a model is the registry's to say (``services.registry``): market models train as
``train`` jobs, the recommender as ``train_recommender`` jobs.
"""

from __future__ import annotations

from typing import Any

from services.market.evaluation import WALK_FORWARD
from services.market.rolling import RETRAIN
from services.market.runs import MARKET_TRAINING
from services.recsys.runs import RECOMMENDER_TRAINING
from services.registry import trainable
from services.runs import JobKind

JOB_KINDS: dict[str, JobKind] = {
    kind.name: kind for kind in (MARKET_TRAINING, RECOMMENDER_TRAINING, WALK_FORWARD, RETRAIN)
}
"""Job kind name (the ``jobs.kind`` column) -> how it runs."""


def dataset_fixed_fields(model_name: str, recipe: dict[str, Any]) -> dict[str, Any]:
    """The model config fields a stored dataset fixes (dotted path -> value), from the
    dataset's recipe: a market model's input widths and horizons; none for the recommender,
    whose widths follow the catalogue at training time."""
    return trainable(model_name).fixed_fields(recipe)


def job_kind_for(model_name: str) -> JobKind:
    """The kind of job that trains ``model_name`` (a registered model)."""
    return JOB_KINDS[trainable(model_name).job_kind]
