"""Every model Trendlab trains, by name: the market models (``core.market.trainables``) and
the two-tower recommender (``core.recsys.trainables``), merged here above the domains. It
feeds the CLI's `trendlab models` and `trendlab train`, the Train page's model picker, the
pages that list runs, and the job manager, which starts the kind of job each model names."""

from __future__ import annotations

from core.config import Config
from core.market.trainables import MARKET_TRAINABLES
from core.recsys.trainables import RECOMMENDER
from core.trainables import Domain, Trainable

TRAINABLE: dict[str, Trainable] = {**MARKET_TRAINABLES, RECOMMENDER.name: RECOMMENDER}
"""Model name -> how it trains, every domain."""


def trainable(name: str) -> Trainable:
    if name not in TRAINABLE:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(TRAINABLE)}")
    return TRAINABLE[name]


def models_of(domain: Domain) -> list[str]:
    """The names of the models of one domain ('market' or 'recsys'), in registry order."""
    return [name for name, model in TRAINABLE.items() if model.domain == domain]


def preset_configs(name: str, preset: str) -> tuple[Config, Config]:
    """The model and training configs of a model's preset."""
    return trainable(name).preset_configs(preset)
