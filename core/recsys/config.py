"""The two-tower recommender's config (seed 004)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.config import Config, is_dropout, positive, positive_dims


@dataclass
class TwoTowerConfig(Config):
    hidden_dims: list[int] = field(default_factory=lambda: [512, 256])
    """Hidden widths of both towers."""
    embedding_dim: int = 128
    """Size of the user and item embeddings."""
    first_dropout: float = 0.3
    """Dropout after the first hidden layer."""
    dropout: float = 0.2
    """Dropout after the later hidden layers."""
    learning_rate: float = 0.001
    """AdamW learning rate, annealed by a cosine schedule."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    batch_size: int = 256
    """Pairs per optimisation step."""
    epochs: int = 50
    """Upper bound on epochs."""
    early_stopping_patience: int = 5
    """Epochs without a validation NDCG@10 improvement before stopping."""
    min_delta: float = 1e-4
    """Smallest rise of validation NDCG@10 that counts as an improvement."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm; 0 disables clipping."""
    negatives_per_positive: int = 2
    """Sampled negatives drawn for each positive interaction."""
    min_interactions: int = 1
    """Users with fewer interactions are left out of training."""
    use_case: str = "developer_startup"
    """Which user and item kinds the model pairs."""
    id_features: bool = False
    """Add item identity (one-hot) to the item tower, and so to the user's history mean: the
    collaborative signal profiles miss. Its width grows with the catalogue; turn it off for
    catalogues past about 50,000 items."""
    objective: Literal["weighted_bce", "in_batch_softmax"] = "weighted_bce"
    """Pointwise weighted BCE, or in-batch sampled softmax with logQ correction."""
    split: Literal["time", "user"] = "time"
    """70/15/15 by one global clock, or by each user's own timeline."""
    text_backend: Literal["tfidf", "sentence_transformers"] = "tfidf"
    """Text embeddings: TF-IDF + SVD, or a sentence-transformer model already on disk."""
    sentence_model_path: str | None = None
    """Folder of the local sentence-transformer model (text_backend sentence_transformers)."""
    seed: int = 42
    """Seeds the negative sampling and the initialisation."""
    cold_max_interactions: int = 5
    """Users with fewer interactions than this are cold (content-based)."""
    hot_min_interactions: int = 20
    """Users with more interactions than this are hot (two-tower only)."""

    def validate(self) -> None:
        self.require("hidden_dims", positive_dims(self.hidden_dims), "positive integers")
        self.require("embedding_dim", self.embedding_dim > 0, "an integer > 0")
        self.require("first_dropout", is_dropout(self.first_dropout), "a number in [0, 1)")
        self.require("dropout", is_dropout(self.dropout), "a number in [0, 1)")
        self.require("learning_rate", positive(self.learning_rate), "a number > 0")
        self.require("weight_decay", self.weight_decay >= 0, "a number >= 0")
        self.require("batch_size", self.batch_size > 0, "an integer > 0")
        self.require("epochs", self.epochs > 0, "an integer > 0")
        self.require("early_stopping_patience", self.early_stopping_patience >= 0, ">= 0")
        self.require("min_delta", self.min_delta >= 0, "a number >= 0")
        self.require("max_grad_norm", self.max_grad_norm >= 0, "a number >= 0 (0 = off)")
        self.require("negatives_per_positive", self.negatives_per_positive >= 0, ">= 0")
        self.require("min_interactions", self.min_interactions >= 0, ">= 0")
        self.require("use_case", bool(self.use_case.strip()), "a non-empty name")
        self.require(
            "sentence_model_path",
            self.text_backend == "tfidf" or bool(self.sentence_model_path),
            "a model folder when text_backend is sentence_transformers",
        )
        self.require("seed", self.seed >= 0, "an integer >= 0")
        self.require("cold_max_interactions", self.cold_max_interactions >= 0, ">= 0")
        self.require(
            "hot_min_interactions",
            self.hot_min_interactions >= self.cold_max_interactions,
            f"at least cold_max_interactions ({self.cold_max_interactions})",
        )
