"""Every model Trendlab trains, by name: the market models (``core.market.models.MODELS``) and
the two-tower recommender. It feeds the CLI's `trendlab models`, the Train page's model
picker and the job manager, which starts the right kind of job for each domain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.config import Config
from core.market.models import MODELS
from core.recsys.config import RecsysTrainingConfig, TwoTowerConfig
from core.recsys.training import MODEL_NAME as RECOMMENDER

Domain = Literal["market", "recsys"]


@dataclass(frozen=True)
class Trainable:
    name: str
    description: str
    domain: Domain
    """'market' models train on market datasets, 'recsys' ones on recommender datasets."""
    config_class: type[Config]
    """What the model is (architecture, and for the recommender its features and routing)."""
    training_config_class: type[Config]
    """How it trains: the shared trainer settings plus its own (loss, windows, sampling)."""


TRAINABLE: dict[str, Trainable] = {
    **{
        spec.name: Trainable(
            spec.name, spec.description, "market", spec.config_class, spec.training_config_class
        )
        for spec in MODELS.values()
    },
    RECOMMENDER: Trainable(
        RECOMMENDER,
        "Two-tower recommender: users x items with cold/warm/hot routing (seed 004)",
        "recsys",
        TwoTowerConfig,
        RecsysTrainingConfig,
    ),
}


def trainable(name: str) -> Trainable:
    if name not in TRAINABLE:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(TRAINABLE)}")
    return TRAINABLE[name]
