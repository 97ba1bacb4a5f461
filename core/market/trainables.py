"""The market models as trainables (``core.trainables``): every model of
``core.market.models.MODELS`` with its presets, trained by ``train`` jobs
(``services.registry`` reads ``MODELS`` when asked, so a model registered there is listed).

Quick: a minute or two on a laptop, for a first look (and the demo jobs of a first start);
standard: the design seeds' model with a bounded budget; thorough: the seeds' settings with
room to converge. The estimate on the Train page says what each costs on this machine."""

from __future__ import annotations

from typing import Any

from core.market.models import ModelSpec
from core.trainables import Trainable, training_lengths

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "dual_tower": {
        "quick": {
            **training_lengths(8, 3, 256),
            "training.scheduler.warmup_epochs": 1,
            "model.context_tower.hidden_dims": [32, 16, 8],
            "model.context_tower.embedding_dim": 16,
            "model.stock_tower.hidden_dims": [64, 32, 16],
            "model.stock_tower.embedding_dim": 32,
        },
        "standard": {**training_lengths(40, 8, 64), "training.scheduler.warmup_epochs": 3},
        "thorough": training_lengths(150, 20, 32),
    },
    "lstm_attention": {
        "quick": {
            **training_lengths(8, 3, 128),
            "model.hidden_dim": 32,
            "model.num_lstm_layers": 1,
        },
        "standard": training_lengths(40, 8, 64),
        "thorough": training_lengths(150, 20, 32),
    },
    "simple_lstm": {
        "quick": {**training_lengths(10, 3, 128), "model.hidden_dim": 32, "model.num_layers": 1},
        "standard": training_lengths(40, 8, 64),
        "thorough": training_lengths(150, 20, 32),
    },
    "compact_dual_tower": {
        "quick": {**training_lengths(10, 3, 256), "model.tower_dim": 16},
        "standard": training_lengths(40, 8, 64),
        "thorough": training_lengths(150, 20, 32),
    },
}


def market_trainable(spec: ModelSpec) -> Trainable:
    """A market model of ``core.market.models.MODELS`` as a trainable, with its presets (none
    for a model this table does not name)."""
    return Trainable(
        spec.name,
        spec.description,
        "market",
        spec.config_class,
        spec.training_config_class,
        job_kind="train",
        presets=PRESETS.get(spec.name, {}),
    )
