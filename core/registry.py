"""Every model Trendlab trains, by name: the market models (``core.market.models.MODELS``) and
the two-tower recommender. It feeds the CLI's `trendlab models`, the Train page's model
picker and the job manager, which starts the right kind of job for each domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.config import Config, from_flat
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
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Named starting points (quick / standard / thorough): dotted fields of the model
    ('model.hidden_dims') and training ('training.epochs') configs and their values; fields
    not named keep their defaults."""


def _lengths(epochs: int, patience: int, batch: int) -> dict[str, Any]:
    return {
        "training.epochs": epochs,
        "training.early_stopping_patience": patience,
        "training.batch_size": batch,
    }


# Quick: a minute or two on a laptop, for a first look (and the demo jobs of a first start);
# standard: the design seeds' model with a bounded budget; thorough: the seeds' settings with
# room to converge. The estimate on the Train page says what each costs on this machine.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "dual_tower": {
        "quick": {
            **_lengths(8, 3, 256),
            "training.scheduler.warmup_epochs": 1,
            "model.context_tower.hidden_dims": [32, 16, 8],
            "model.context_tower.embedding_dim": 16,
            "model.stock_tower.hidden_dims": [64, 32, 16],
            "model.stock_tower.embedding_dim": 32,
        },
        "standard": {**_lengths(40, 8, 64), "training.scheduler.warmup_epochs": 3},
        "thorough": _lengths(150, 20, 32),
    },
    "lstm_attention": {
        "quick": {**_lengths(8, 3, 128), "model.hidden_dim": 32, "model.num_lstm_layers": 1},
        "standard": _lengths(40, 8, 64),
        "thorough": _lengths(150, 20, 32),
    },
    "simple_lstm": {
        "quick": {**_lengths(10, 3, 128), "model.hidden_dim": 32, "model.num_layers": 1},
        "standard": _lengths(40, 8, 64),
        "thorough": _lengths(150, 20, 32),
    },
    "compact_dual_tower": {
        "quick": {**_lengths(10, 3, 256), "model.tower_dim": 16},
        "standard": _lengths(40, 8, 64),
        "thorough": _lengths(150, 20, 32),
    },
    RECOMMENDER: {  # least-squares sweeps of the ids, then epochs of the towers
        "quick": {
            **_lengths(3, 2, 1024),
            "training.als_sweeps": 4,
            "model.hidden_dims": [128],
            "model.embedding_dim": 32,
            "model.id_dim": 128,
        },
        "standard": {**_lengths(10, 3, 1024), "training.als_sweeps": 10},
        "thorough": {**_lengths(30, 5, 512), "training.als_sweeps": 20},
    },
}


TRAINABLE: dict[str, Trainable] = {
    **{
        spec.name: Trainable(
            spec.name,
            spec.description,
            "market",
            spec.config_class,
            spec.training_config_class,
            PRESETS.get(spec.name, {}),
        )
        for spec in MODELS.values()
    },
    RECOMMENDER: Trainable(
        RECOMMENDER,
        "Two-tower recommender: users x items with cold/warm/hot routing (seed 004)",
        "recsys",
        TwoTowerConfig,
        RecsysTrainingConfig,
        PRESETS[RECOMMENDER],
    ),
}


def preset_configs(name: str, preset: str) -> tuple[Config, Config]:
    """The model and training configs of a model's preset."""
    model = trainable(name)
    values = model.presets[preset]
    part = {
        prefix: {k.removeprefix(f"{prefix}."): v for k, v in values.items() if k.startswith(prefix)}
        for prefix in ("model", "training")
    }
    return (
        from_flat(model.config_class, part["model"]),
        from_flat(model.training_config_class, part["training"]),
    )


def trainable(name: str) -> Trainable:
    if name not in TRAINABLE:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(TRAINABLE)}")
    return TRAINABLE[name]
