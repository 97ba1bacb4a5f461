"""What a trainable model is, for any domain: its name, config classes, presets and the kind
of job that trains it. Each domain lists its own (``core.market.trainables``,
``core.recsys.trainables``); ``services.registry`` merges them, so this module knows no
domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.config import Config, from_flat

Domain = Literal["market", "recsys"]


@dataclass(frozen=True)
class Trainable:
    """One model Trendlab trains, as the CLI, the Train page and the job manager see it."""

    name: str
    description: str
    domain: Domain
    """'market' models train on market datasets, 'recsys' ones on recommender datasets."""
    config_class: type[Config]
    """What the model is (architecture, and for the recommender its features and routing)."""
    training_config_class: type[Config]
    """How it trains: the shared trainer settings plus its own (loss, windows, sampling)."""
    job_kind: str
    """The kind of background job that trains it (``services.jobs.kinds``)."""
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Named starting points (quick / standard / thorough): dotted fields of the model
    ('model.hidden_dims') and training ('training.epochs') configs and their values; fields
    not named keep their defaults."""

    def preset_configs(self, preset: str) -> tuple[Config, Config]:
        """The model and training configs of one of the presets."""
        values = self.presets[preset]
        part = {
            prefix: {
                k.removeprefix(f"{prefix}."): v for k, v in values.items() if k.startswith(prefix)
            }
            for prefix in ("model", "training")
        }
        return (
            from_flat(self.config_class, part["model"]),
            from_flat(self.training_config_class, part["training"]),
        )


def training_lengths(epochs: int, patience: int, batch: int) -> dict[str, Any]:
    """A preset's budget: epochs, early-stopping patience and batch size."""
    return {
        "training.epochs": epochs,
        "training.early_stopping_patience": patience,
        "training.batch_size": batch,
    }
