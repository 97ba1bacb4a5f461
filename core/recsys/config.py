"""The two-tower recommender's configs (seed 004), split like the market models': what the
model is (``TwoTowerConfig``: towers, features, routing) and how it trains
(``RecsysTrainingConfig``: the shared trainer settings, optimiser and schedule included, plus
the sampling and split that only a recommender has)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from core.config import (
    BaseTrainingConfig,
    Config,
    ConfigError,
    OptimizerConfig,
    SchedulerConfig,
    is_dropout,
    positive_dims,
)

STORED_FIELDS = frozenset(
    {"hidden_dims", "embedding_dim", "id_dim", "use_case", "search", "cold_max_interactions"}
)
"""Fields every stored TwoTowerConfig since ID embeddings holds: a mapping with all of them
is a whole config of some version, not a file of overrides."""


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
    use_case: str = "developer_startup"
    """Which user and item kinds the model pairs."""
    id_embeddings: bool = True
    """Learn an embedding per user id and per item id (``id_dim`` wide) beside the towers,
    the user's being their id's plus a pooling of their history items' (history_pooling):
    the collaborative signal that profiles miss. Each side's embedding is its tower's output
    and this id part side by side. Memory grows with users plus items, never with their
    product. Off: profiles and the history's mean profile only."""
    id_dim: int = 512
    """Width of the user, item and history id embeddings (added to embedding_dim). Wide,
    because ranking a catalogue by co-occurrence needs rank: on the online-retail log
    (implicit_als, random split, seed 0) 256 ranked at test NDCG@10 0.200, 512 at 0.209
    (docs/recommender.md). Memory: (users + items) x id_dim floats; a least-squares sweep
    costs about items x id_dim^2."""
    history_pooling: Literal["least_squares", "mean"] = "least_squares"
    """How the user's id part reads their history's item embeddings: least_squares, the
    vector that best scores those items 1 and every other item 0 (iALS's user step, so a
    user's vector follows their latest history without retraining); mean, their average
    (an EmbeddingBag)."""
    pooling_gravity: float = 0.05
    """least_squares: weight of every item's pull towards 0 against the read items' pull
    to 1 (iALS's alpha_0). On the online-retail log's validation split (seed 0, id_dim 512)
    0.05 ranked at NDCG@10 0.188, 0.1 a little lower, 0.2 at 0.175 (docs/recommender.md)."""
    pooling_l2: float = 0.01
    """least_squares: ridge penalty per unit of (history size + pooling_gravity x items),
    the frequency-scaled regularisation of Rendle et al. (2021). On the same validation
    split (pooling_gravity 0.1) 0.003 ranked at 0.184 and 0.03 at 0.108, below 0.01."""
    item_bias: bool = True
    """A learned bias per item (how popular it is, whatever the user), held as one more
    coordinate of the item embedding facing a 1 on the user side: scores stay one inner
    product, so serving and approximate search work unchanged."""
    max_history: int = 200
    """A training example's history bag holds at most this many of the user's positive
    items (a fresh random draw every epoch for longer histories); evaluation and serving
    read the whole history."""
    search: Literal["auto", "exact", "faiss_flat", "ivf", "hnsw"] = "auto"
    """How serving finds the top items: exact inner products (numpy), a FAISS flat index, or
    an approximate FAISS index (IVF or HNSW, needs faiss-cpu); auto is exact below
    100,000 items and HNSW from there when FAISS is installed."""
    text_backend: Literal["tfidf", "sentence_transformers"] = "tfidf"
    """Text embeddings: TF-IDF + SVD, or a sentence-transformer model already on disk."""
    sentence_model_path: str | None = None
    """Folder of the local sentence-transformer model (text_backend sentence_transformers)."""
    cold_max_interactions: int = 5
    """Users with fewer interactions than this are cold (content-based)."""
    hot_min_interactions: int = 20
    """Users with more interactions than this are hot (two-tower only)."""

    def validate(self) -> None:
        self.require("hidden_dims", positive_dims(self.hidden_dims), "positive integers")
        self.require("embedding_dim", self.embedding_dim > 0, "an integer > 0")
        self.require("first_dropout", is_dropout(self.first_dropout), "a number in [0, 1)")
        self.require("dropout", is_dropout(self.dropout), "a number in [0, 1)")
        self.require("use_case", bool(self.use_case.strip()), "a non-empty name")
        self.require("id_dim", self.id_dim > 0, "an integer > 0")
        self.require("max_history", self.max_history > 0, "an integer > 0")
        self.require("pooling_gravity", self.pooling_gravity > 0, "a number > 0")
        self.require("pooling_l2", self.pooling_l2 > 0, "a number > 0")
        self.require(
            "sentence_model_path",
            self.text_backend == "tfidf" or bool(self.sentence_model_path),
            "a model folder when text_backend is sentence_transformers",
        )
        self.require("cold_max_interactions", self.cold_max_interactions >= 0, ">= 0")
        self.require(
            "hot_min_interactions",
            self.hot_min_interactions >= self.cold_max_interactions,
            f"at least cold_max_interactions ({self.cold_max_interactions})",
        )

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Configs stored before ID embeddings held ``id_features`` (one-hot identity, off by
        default): they load with ``id_embeddings`` set as it was, so their weights still fit."""
        if "id_features" in data:
            data["id_embeddings"] = bool(data.pop("id_features"))
            data.setdefault("id_dim", 64)
            data.setdefault("max_history", 50)
            data.setdefault("search", "auto")
        if data.keys() >= STORED_FIELDS:  # a whole config stored by an earlier version
            data.setdefault("item_bias", False)  # of a version before the bias: none learned
            data.setdefault("history_pooling", "mean")  # and before least-squares pooling
            data.setdefault("pooling_gravity", 0.1)
            data.setdefault("pooling_l2", 0.01)
        return data


def _recsys_optimizer() -> OptimizerConfig:
    return OptimizerConfig(
        optimizer_type="adamw",
        base_learning_rate=0.005,
        weight_decay=0.0,
        stock_tower_lr_multiplier=1.0,
    )


def _recsys_scheduler() -> SchedulerConfig:
    return SchedulerConfig(scheduler_type="cosine", warmup_epochs=0, min_learning_rate=0.0)


@dataclass
class RecsysTrainingConfig(BaseTrainingConfig):
    """The recommender's training: the id tables solved by alternating least squares (at
    most 10 sweeps), then the towers fitted to what the ids leave over batches of 1,024
    users, AdamW at 5e-3 without weight decay, cosine annealing over at most 10 epochs,
    early stopping on validation NDCG@10 (seed 004's pairs: ``objective: weighted_bce``,
    ``batch_size: 256``, learning rate 1e-3, weight decay 0.01, 50 epochs). The defaults are
    the best of small grids on the online-retail log's validation split
    (docs/recommender.md)."""

    batch_size: int = 1024
    """Users per optimisation step (implicit_als, masked_softmax, implicit_squared), pairs
    per step (weighted_bce, in_batch_softmax)."""
    epochs: int = 10
    """Upper bound on epochs (the cosine schedule anneals over them)."""
    early_stopping_patience: int = 3
    """Epochs without a validation NDCG@10 improvement before stopping."""
    optimizer: OptimizerConfig = field(default_factory=_recsys_optimizer)
    """AdamW at 5e-3 without weight decay (the stock-tower multiplier does not apply)."""
    scheduler: SchedulerConfig = field(default_factory=_recsys_scheduler)
    """Cosine annealing over the epochs, no warm-up."""
    negatives_per_positive: int = 2
    """Sampled negatives drawn for each positive interaction (weighted_bce,
    in_batch_softmax)."""
    min_interactions: int = 1
    """Users with fewer interactions are left out of training."""
    objective: Literal[
        "implicit_als", "masked_softmax", "implicit_squared", "weighted_bce", "in_batch_softmax"
    ] = "implicit_als"
    """implicit_als: the id tables solved in closed form first (iALS: every user's vector
    from their training items, every item's from its users, als_sweeps times), then the
    towers and item bias fitted by gradient epochs on the squared loss with the ids fixed;
    an epoch is kept only where it beats the solved ids on validation. On the online-retail
    log (random split, seed 0) it ranked at test NDCG@10 0.210, item-kNN at 0.186, the
    masked softmax at 0.151. masked_softmax: each step takes batch_size users, holds
    mask_share of each one's training items out of the history the user tower reads, and
    scores them against the candidates (softmax over the catalogue, the read items masked).
    weighted_bce: seed 004's pointwise pairs with its labels and weights; in_batch_softmax:
    those pairs in a sampled softmax over the batch's items with the logQ correction. On the
    online-retail log masked_softmax ranked at NDCG@10 0.165 where weighted_bce reached
    0.075.
    implicit_squared: the same users and held-out items, squared error instead (held-out
    scores to 1, other unread items to 0 weighted by gravity), as iALS fits."""
    als_sweeps: int = 10
    """implicit_als: at most this many least-squares sweeps of the id tables (each solves
    every user, then every item), before the epochs fit the towers."""
    gravity: float = 0.05
    """implicit_squared: weight of the unread items' pull towards 0 (iALS's alpha^-1)."""
    mask_share: float = 0.3
    """masked_softmax: share of each user's training items held out as targets each step
    (at least one); the rest is what the user tower reads."""
    softmax_items: int = 50_000
    """masked_softmax: catalogues up to this many items are scored whole every step; larger
    ones against this many items drawn uniformly plus the batch's targets, each corrected
    by the log of its chance to be drawn."""
    split: Literal["time", "user", "random"] = "time"
    """time: 70/15/15 by one global clock; user: each user's own timeline cut at 70/15/15;
    random: each user's events shuffled and cut 80/10/10 (RecBole's default protocol, for
    comparing with published tables; the seed picks the cut)."""

    def validate(self) -> None:
        super().validate()
        self.require("negatives_per_positive", self.negatives_per_positive >= 0, ">= 0")
        self.require("min_interactions", self.min_interactions >= 0, ">= 0")
        self.require("mask_share", 0 < self.mask_share < 1, "a share in (0, 1)")
        self.require("softmax_items", self.softmax_items > 0, "an integer > 0")
        self.require("gravity", self.gravity > 0, "a number > 0")
        self.require("als_sweeps", self.als_sweeps > 0, "an integer > 0")

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Training configs stored before masked_softmax trained with pairs: their objective
        is kept (weighted_bce when none was stored) and the new fields take defaults."""
        stored = {"negatives_per_positive", "min_interactions", "batch_size", "epochs"}
        if stored <= data.keys() and "mask_share" not in data:  # a whole stored config
            data.setdefault("objective", "weighted_bce")
            data.setdefault("mask_share", 0.3)
            data.setdefault("softmax_items", 50_000)
        if stored <= data.keys():
            data.setdefault("gravity", 0.05)
        return super().upgrade(data)


def split_settings(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One mapping of recommender settings (as the single config of earlier versions held
    them, or a YAML file mixing both) -> (model settings, training settings). Keys of neither
    stay with the model settings, whose check names them."""
    training_names = {f.name for f in fields(RecsysTrainingConfig)}
    model, training = {}, {}
    for key, value in data.items():
        if key in ("learning_rate", "weight_decay"):  # the old flat names of AdamW's settings
            name = "base_learning_rate" if key == "learning_rate" else key
            training.setdefault("optimizer", {})[name] = value
        elif key in training_names:
            training[key] = value
        else:
            model[key] = value
    return model, training


def recsys_configs(
    settings: dict[str, Any], *, partial: bool = True, source: str | None = None
) -> tuple[TwoTowerConfig, RecsysTrainingConfig]:
    """Model and training configs from one mapping of settings (a YAML file, or a config an
    earlier version stored whole); errors name ``source`` and the field."""
    model, training = split_settings(settings)
    try:
        return (
            TwoTowerConfig.from_dict(model, partial=partial),
            RecsysTrainingConfig.from_dict(training, partial=True),
        )
    except ConfigError as error:
        raise error.within(source=source) if source else error from None
