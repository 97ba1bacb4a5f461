"""The two-tower recommender as a trainable (``core.trainables``), trained by
``train_recommender`` jobs: least-squares sweeps of the ids, then epochs of the towers."""

from __future__ import annotations

from core.recsys.config import RecsysTrainingConfig, TwoTowerConfig
from core.recsys.training import MODEL_NAME
from core.trainables import Trainable, training_lengths

RECOMMENDER = Trainable(
    MODEL_NAME,
    "Two-tower recommender: users x items with cold/warm/hot routing (seed 004)",
    "recsys",
    TwoTowerConfig,
    RecsysTrainingConfig,
    job_kind="train_recommender",
    presets={
        "quick": {
            **training_lengths(3, 2, 1024),
            "training.als_sweeps": 4,
            "model.hidden_dims": [128],
            "model.embedding_dim": 32,
            "model.id_dim": 128,
        },
        "standard": {**training_lengths(10, 3, 1024), "training.als_sweeps": 10},
        "thorough": {**training_lengths(30, 5, 512), "training.als_sweeps": 20},
    },
)
"""The recommender and its presets."""
