"""Configs of the market models and datasets: the dual tower (seeds 000/001), the attention
LSTM (seed 003), seed 002's compact baselines, their losses and training, and the dataset
recipe. The machinery (validation, YAML, forms) is ``core.config``'s."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from core.config import BaseTrainingConfig, Config, is_dropout, positive_dims

DEFAULT_TICKERS = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA"]
DEFAULT_HORIZONS = (7, 30)
"""The label horizons (calendar days) of a dataset unless its DataConfig says otherwise;
every model, loss, evaluation and page takes the dataset's own."""


def _valid_horizons(horizons: list[int]) -> bool:
    return bool(horizons) and all(h > 0 for h in horizons) and len(set(horizons)) == len(horizons)


class HorizonModelConfig(Config):
    """A model config with one head per label horizon: ``horizons`` is validated here and
    missing from configs written before it existed (they predicted 7 and 30 days)."""

    def validate(self) -> None:
        self.require("horizons", _valid_horizons(self.horizons), "distinct days > 0")

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault("horizons", list(DEFAULT_HORIZONS))
        return data


@dataclass
class ContextTowerConfig(Config):
    news_dim: int = 8
    """Daily news features: sentiment, volume, diversity, ..."""
    policy_dim: int = 5
    """Policy features: announcement type, urgency, sector impact, ..."""
    macro_dim: int = 12
    """Macro features: inflation, rates, growth, employment, ..."""
    hidden_dims: list[int] = field(default_factory=lambda: [128, 64, 32])
    """Widths of the hidden layers, input side first."""
    embedding_dim: int = 32
    """Size of the context embedding."""
    dropout: float = 0.2
    """Dropout after each hidden layer, in [0, 1)."""

    @property
    def input_dim(self) -> int:
        return self.news_dim + self.policy_dim + self.macro_dim

    def validate(self) -> None:
        for name in ("news_dim", "policy_dim", "macro_dim"):
            self.require(name, getattr(self, name) >= 0, "an integer >= 0")
        self.require("macro_dim", self.input_dim > 0, "at least one context feature in all")
        self.require("hidden_dims", positive_dims(self.hidden_dims), "positive integers")
        self.require("embedding_dim", self.embedding_dim > 0, "an integer > 0")
        self.require("dropout", is_dropout(self.dropout), "a number in [0, 1)")


@dataclass
class StockTowerConfig(Config):
    input_dim: int = 62
    """Stock features: OHLCV-derived, technical, returns and volatility."""
    hidden_dims: list[int] = field(default_factory=lambda: [256, 128, 64])
    """Widths of the hidden layers, input side first."""
    embedding_dim: int = 64
    """Size of the stock embedding."""
    dropout: float = 0.3
    """Dropout after each hidden layer, in [0, 1)."""

    def validate(self) -> None:
        self.require("input_dim", self.input_dim > 0, "an integer > 0")
        self.require("hidden_dims", positive_dims(self.hidden_dims), "positive integers")
        self.require("embedding_dim", self.embedding_dim > 0, "an integer > 0")
        self.require("dropout", is_dropout(self.dropout), "a number in [0, 1)")


@dataclass
class RelevanceHeadConfig(Config):
    hidden_dims: list[int] = field(default_factory=lambda: [16, 8])
    """Widths of each horizon head's hidden layers."""
    dropout: float = 0.2
    """Dropout inside the heads, in [0, 1)."""
    num_direction_classes: int = 3
    """Direction classes per horizon: positive, none, negative."""

    def validate(self) -> None:
        self.require("hidden_dims", positive_dims(self.hidden_dims), "positive integers")
        self.require("dropout", is_dropout(self.dropout), "a number in [0, 1)")
        self.require("num_direction_classes", self.num_direction_classes >= 2, "an integer >= 2")


@dataclass
class DualTowerModelConfig(HorizonModelConfig):
    context_tower: ContextTowerConfig = field(default_factory=ContextTowerConfig)
    """The context (news, policy, macro) tower."""
    stock_tower: StockTowerConfig = field(default_factory=StockTowerConfig)
    """The stock (price, technical, returns, volatility) tower."""
    head: RelevanceHeadConfig = field(default_factory=RelevanceHeadConfig)
    """Shared shape of the 7-day and 30-day relevance heads."""
    interaction: Literal["bilinear", "concat"] = "bilinear"
    """How the towers meet: 'bilinear' adds a learned context x stock product to the
    concatenated embeddings; 'concat' uses the concatenation alone (an ablation)."""
    input_gate_l1: float = 0.03
    """Weight of the L1 penalty on a learned scale per input feature (a lasso over the
    inputs; 0: no gates). On the planted market the relevance is a function of 3 of the 90
    inputs, and without gates the towers spread their weight over all of them (docs/models.md,
    "Input gates")."""
    target: Literal["relevance", "trend"] = "relevance"
    """What the heads learn: 'relevance' (seed 000: how far the context moved the stock over
    the horizon; defined only where context is observed) or 'trend' (the forward trend score
    and its down / neutral / up class, defined on every row with a forward window, so
    price-only data trains on every row; the masks tell the context tower what is unknown)."""
    horizons: list[int] = field(default_factory=lambda: list(DEFAULT_HORIZONS))
    """Label horizons the heads predict, in calendar days: fixed by the dataset (its
    DataConfig.horizons), which training copies here."""

    def validate(self) -> None:
        super().validate()
        self.require("input_gate_l1", self.input_gate_l1 >= 0, "a number >= 0 (0: no gates)")

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Whole configs stored before the input gates load without them (their weights have
        none); a partial override keeps the default."""
        data = super().upgrade(data)
        if _stored_whole(data):
            data.setdefault("input_gate_l1", 0.0)
        return data


def _stored_whole(data: dict[str, Any]) -> bool:
    """A dual-tower config as a run or checkpoint stores it: the interaction, the target and
    every section with every one of its fields (an override names fewer)."""
    sections = {
        "context_tower": ContextTowerConfig,
        "stock_tower": StockTowerConfig,
        "head": RelevanceHeadConfig,
    }
    return {"interaction", "target"} <= data.keys() and all(
        isinstance(data.get(key), dict)
        and data[key].keys() >= {f.name for f in dataclasses.fields(section)}
        for key, section in sections.items()
    )


class HorizonLossConfig(Config):
    """Weights of a loss with a regression and a classification term per horizon."""

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            if f.name != "horizon_weights":
                self.require(f.name, getattr(self, f.name) >= 0, "a number >= 0")
        self.require(
            "horizon_weights",
            all(HORIZON_KEY.fullmatch(k) and w >= 0 for k, w in self.horizon_weights.items()),
            "a mapping like {'30d': 2.0}: horizon keys 'Nd' to weights >= 0",
        )

    def horizon_weight(self, horizon: int) -> float:
        return self.horizon_weights.get(f"{horizon}d", 1.0)

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Configs before horizons were configurable had one weight per task and horizon
        (``regression_weight_7d``, ...): the 7-day weights become the task weights and the
        30-day ones a factor in ``horizon_weights`` (from the regression term)."""
        legacy = {k: data.pop(k) for k in list(data) if re.fullmatch(r"\w+_weight_\d+d", k)}
        if legacy:
            data.setdefault("regression_weight", legacy.get("regression_weight_7d", 1.0))
            data.setdefault("classification_weight", legacy.get("classification_weight_7d", 0.5))
            short, long = legacy.get("regression_weight_7d"), legacy.get("regression_weight_30d")
            if short and long is not None and long != short:
                data.setdefault("horizon_weights", {"30d": long / short})
        return data


HORIZON_KEY = re.compile(r"[1-9][0-9]*d")


@dataclass
class LossConfig(HorizonLossConfig):
    regression_weight: float = 1.0
    """Weight of each horizon's relevance MSE."""
    classification_weight: float = 0.5
    """Weight of each horizon's direction cross-entropy."""
    horizon_weights: dict[str, float] = field(default_factory=dict)
    """Extra factor on one horizon's two terms, keyed like '30d' ({'30d': 2.0} doubles the
    30-day MSE and cross-entropy); horizons not named keep 1."""
    regularization_weight: float = 0.01
    """Weight of the tower orthogonality penalty."""
    magnitude_weight: float = 0.001
    """Weight of the embedding magnitude penalty (the seeds name the term, not its weight)."""


ROWS_PER_STEP = 200
"""Sizing to the rows: the batch grows towards training rows / this (a power of two)."""
MAX_FITTED_BATCH = 1024
"""Sizing to the rows never picks a larger batch than this."""
MAX_LR_SCALE = 2.0
"""Sizing to the rows raises the learning rates by at most this factor."""
ROW_VISITS = 15_000_000
"""Sizing to the rows: epochs are capped so an epoch's rows times the epochs stay under this
(at least ``MIN_FITTED_EPOCHS``): 22 epochs of a 500-ticker x 10-year universe."""
MIN_FITTED_EPOCHS = 10


@dataclass
class MarketTrainingConfig(BaseTrainingConfig):
    """Training settings of the market models, with sizing to the dataset."""

    fit_to_rows: bool = True
    """Size the run to its training rows when it starts. Where there are more rows than
    batch_size x 200, the batch grows to about rows / 200 (a power of two, at most 1024) and
    the learning rates with the square root of the batch's growth (Adam's scaling rule, at
    most 2x: 4x made the 500-ticker run diverge); epochs are capped so the run reads at most
    15 million rows (at least 10 epochs), and patience at the epochs. The bundled demo and
    small universes train with the values given; a 500-ticker x 10-year universe (690,000
    training rows) trains at batch 1024 for 21 epochs instead of 21,600 steps of 32 rows an
    epoch for 100. The checkpoint keeps the values used. false: the values given, whatever
    the rows."""

    def sized_for(self, rows: int) -> MarketTrainingConfig:
        """These settings sized to ``rows`` training rows (``fit_to_rows``), with
        ``fit_to_rows`` off so the result sizes nothing again; unchanged when it is off."""
        if not self.fit_to_rows:
            return self
        batch = self.batch_size
        if rows > batch * ROWS_PER_STEP:
            batch = max(batch, min(MAX_FITTED_BATCH, 2 ** round(math.log2(rows / ROWS_PER_STEP))))
        scale = min(MAX_LR_SCALE, math.sqrt(batch / self.batch_size))
        epochs = min(self.epochs, max(MIN_FITTED_EPOCHS, ROW_VISITS // max(rows, 1)))
        rate = self.optimizer.base_learning_rate * scale
        return dataclasses.replace(
            self,
            fit_to_rows=False,
            batch_size=batch,
            epochs=epochs,
            early_stopping_patience=min(self.early_stopping_patience, epochs),
            optimizer=dataclasses.replace(self.optimizer, base_learning_rate=rate),
        )


@dataclass
class TrainingConfig(MarketTrainingConfig):
    loss: LossConfig = field(default_factory=LossConfig)
    """Weights of the dual-tower multi-task loss."""


@dataclass
class DataConfig(Config):
    tickers: list[str] = field(default_factory=lambda: list(DEFAULT_TICKERS))
    """Tickers to build the dataset from."""
    start_date: str | None = None
    """First row date (ISO 8601) of the dataset; earlier prices serve only as the features'
    warm-up. null: from the first date whose features are complete."""
    end_date: str | None = None
    """Last row date (ISO 8601) of the dataset; null: the last date of the prices."""
    horizons: list[int] = field(default_factory=lambda: list(DEFAULT_HORIZONS))
    """Label horizons in calendar days: each gets trend and relevance labels, and every model
    trained on the dataset predicts each of them."""
    train_fraction: float = 0.7
    """Share of dates in the training segment."""
    val_fraction: float = 0.15
    """Share of dates in the validation segment."""
    test_fraction: float = 0.15
    """Share of dates in the test segment."""
    purge_days: int | None = None
    """Calendar days dropped between segments; null means the longest horizon."""
    normalize: bool = True
    """Standardise features with statistics of the training segment only."""
    time_aware_split: bool = True
    """Split by date with a purge. Only true is accepted: a shuffled split puts rows whose
    label windows overlap into training and test, which leaks the future."""
    neutral_z: float = 0.4307
    """3-class trend: |forward return / its own volatility| below this is 'neutral'
    (0.4307 cuts a standard normal into equal thirds)."""
    relevance_threshold: float = 0.25
    """Relevance class: a score above this is 'positive', below its negative 'negative',
    between them 'none'."""
    cross_sectional: Literal["auto", "on", "off"] = "auto"
    """Cross-sectional learning (core.market.cross_section): stock features robust-z-scored
    across each date's tickers, trend labels as the forward return's rank on its date, and
    early stopping on the validation rank IC. 'auto' turns it on where the median date has
    at least 20 tickers (a universe, not a handful of series)."""

    def validate(self) -> None:
        self.require("tickers", len(self.tickers) > 0, "at least one ticker")
        self.require("tickers", len(set(self.tickers)) == len(self.tickers), "no duplicates")
        for name in ("start_date", "end_date"):
            value = getattr(self, name)
            self.require(
                name, value is None or _is_iso_date(value), "null or a date like 2015-01-31"
            )
        if self.start_date and self.end_date:
            self.require("end_date", self.end_date > self.start_date, "after start_date")
        self.require("horizons", _valid_horizons(self.horizons), "distinct days > 0")
        for name in ("train_fraction", "val_fraction", "test_fraction"):
            self.require(name, 0 < getattr(self, name) < 1, "a number in (0, 1)")
        total = self.train_fraction + self.val_fraction + self.test_fraction
        self.require("test_fraction", math.isclose(total, 1.0), "fractions that sum to 1")
        self.require("neutral_z", self.neutral_z >= 0, "a number >= 0")
        self.require("time_aware_split", self.time_aware_split, "true (a shuffled split leaks)")
        self.require("relevance_threshold", 0 <= self.relevance_threshold < 1, "a number in [0, 1)")
        self.require(
            "cross_sectional", self.cross_sectional in ("auto", "on", "off"), "auto, on or off"
        )
        if self.purge_days is not None:
            self.require(
                "purge_days",
                self.purge_days >= max(self.horizons),
                f"null or at least the longest horizon ({max(self.horizons)} days)",
            )

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Whole configs stored before cross-sectional learning built their datasets without
        it, and keep it off; a partial override keeps the default."""
        whole = {"tickers", "horizons", "train_fraction", "neutral_z", "relevance_threshold"}
        if whole <= data.keys():
            data.setdefault("cross_sectional", "off")
        return data

    @property
    def effective_purge_days(self) -> int:
        return self.purge_days if self.purge_days is not None else max(self.horizons)


def _is_iso_date(text: str) -> bool:

    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass
class CompactDualTowerConfig(HorizonModelConfig):
    context_dim: int = 25
    """Context features (news, policy, macro); the 3 group masks are added to them."""
    stock_dim: int = 62
    """Stock features."""
    tower_dim: int = 16
    """Width of each tower (seed 002: 16)."""
    dropout: float = 0.1
    """Dropout after each tower, in [0, 1)."""
    horizons: list[int] = field(default_factory=lambda: list(DEFAULT_HORIZONS))
    """Label horizons the heads predict, in calendar days: fixed by the dataset (its
    DataConfig.horizons), which training copies here."""

    def validate(self) -> None:
        super().validate()
        for name in ("context_dim", "stock_dim", "tower_dim"):
            self.require(name, getattr(self, name) > 0, "an integer > 0")
        self.require("dropout", 0 <= self.dropout < 1, "a number in [0, 1)")
