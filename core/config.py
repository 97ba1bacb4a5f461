"""Typed configuration for every Trendlab component, with strict YAML round-trip.

Each config is a dataclass whose defaults are the numbers the design seeds give. A docstring
under each field explains it (``field_docs`` reads them for CLI and form help). Values are
checked in ``__post_init__``; every problem raises :class:`ConfigError` naming the field, the
value and what is allowed, so a typo in a YAML file is reported as one clear sentence.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import math
import textwrap
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self, get_args, get_origin

import yaml

DEFAULT_TICKERS = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA"]


class ConfigError(ValueError):
    """A config value is missing, of the wrong type or out of range."""

    def __init__(self, field: str, value: Any, allowed: str, source: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field} = {value!r} is invalid: expected {allowed}")

    def within(self, prefix: str = "", source: str | None = None) -> ConfigError:
        """The same error with the field path prefixed and/or the source file named."""
        name = f"{prefix}.{self.field}" if prefix else self.field
        return ConfigError(name, self.value, self.allowed, source or self.source)


_MISSING = object()


class Config:
    """Base for all configs: type checks, validation hook, dict and YAML conversion."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            _check_type(f.name, value, _type_hints(type(self))[f.name])
        self.validate()

    def validate(self) -> None:
        """Range and consistency checks; subclasses override and call ``require``."""

    def require(self, name: str, ok: bool, allowed: str) -> None:
        if not ok:
            raise ConfigError(name, getattr(self, name), allowed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Any, *, partial: bool = False, prefix: str = "") -> Self:
        """Build from plain data. Unknown keys are errors; missing keys too unless ``partial``.

        ``partial=True`` fills missing keys with defaults, for override files.
        """
        if not isinstance(data, dict):
            raise ConfigError(prefix or cls.__name__, data, "a mapping of field names to values")
        hints = _type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for key in data:
            if key not in names:
                path = f"{prefix}.{key}" if prefix else str(key)
                raise ConfigError(
                    path, data[key], f"no such field; known: {', '.join(sorted(names))}"
                )
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            path = f"{prefix}.{f.name}" if prefix else f.name
            value = data.get(f.name, _MISSING)
            if value is _MISSING:
                if partial:
                    continue
                raise ConfigError(path, None, "a value (the key is missing)")
            nested = _config_class(hints[f.name])
            if nested is not None:
                value = nested.from_dict(value, partial=partial, prefix=path)
            kwargs[f.name] = _coerce(value, hints[f.name])
        try:
            return cls(**kwargs)
        except ConfigError as err:
            raise err.within(prefix) from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save_yaml(self, path: str | Path) -> None:
        _write_text_atomic(Path(path), self.to_yaml())

    @classmethod
    def load_yaml(cls, path: str | Path, *, partial: bool = False) -> Self:
        """Read a YAML file; errors name the file and the field path."""
        data = _read_yaml(Path(path))
        try:
            return cls.from_dict(data, partial=partial)
        except ConfigError as err:
            raise err.within(source=str(path)) from None


MAX_YAML_BYTES = 1 << 20
"""Largest YAML text read as a config (a full config is a few kilobytes)."""
MAX_YAML_VALUES = 10_000
"""Most values a YAML text may hold once its aliases are expanded: a config has a few
hundred, while an alias bomb of 700 bytes expands to billions."""


def parse_yaml(text: str, source: str = "yaml") -> Any:
    """YAML text -> Python values, refusing what would exhaust the process: texts over
    ``MAX_YAML_BYTES`` and documents over ``MAX_YAML_VALUES`` values with aliases expanded.
    Errors are ``ConfigError`` naming ``source`` and the line."""
    if len(text.encode("utf-8", "replace")) > MAX_YAML_BYTES:
        raise ConfigError("file", source, f"a YAML text of at most {MAX_YAML_BYTES} bytes")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()  # the node graph: aliases are shared, not copied
        if node is None:
            return None
        if _expanded_values(node, {}, set()) > MAX_YAML_VALUES:
            raise ConfigError(
                "yaml",
                "aliases",
                f"at most {MAX_YAML_VALUES} values once aliases are expanded",
                source,
            )
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else "somewhere"
        problem = getattr(err, "problem", err)
        raise ConfigError("yaml", line, f"valid YAML ({problem})", source) from None
    except RecursionError:
        raise ConfigError("yaml", "nesting", "a YAML text nested less deeply", source) from None
    finally:
        loader.dispose()


def _expanded_values(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values ``node`` stands for with every alias copied out; a node that contains
    itself counts as too many."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        return MAX_YAML_VALUES + 1
    open_nodes.add(key)
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    total = 1
    for child in children:
        total += _expanded_values(child, sizes, open_nodes)
        if total > MAX_YAML_VALUES:
            break
    open_nodes.discard(key)
    sizes[key] = total
    return total


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file", str(path), "an existing YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError("file", str(path), "a UTF-8 text file") from None
    return parse_yaml(text, str(path))


def _write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a failed write never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _config_class(hint: Any) -> type[Config] | None:
    return hint if isinstance(hint, type) and issubclass(hint, Config) else None


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in get_args(hint))
    if origin is list:
        return f"a list of {_describe(get_args(hint)[0])}"
    if hint is type(None):
        return "null"
    if hint is float:
        return "a number"
    if hint is int:
        return "an integer"
    if hint is bool:
        return "true or false"
    if hint is str:
        return "a string"
    return getattr(hint, "__name__", str(hint))


def _matches(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_matches(value, a) for a in get_args(hint))
    if origin is list:
        return isinstance(value, list) and all(_matches(v, get_args(hint)[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _check_type(name: str, value: Any, hint: Any) -> None:
    if not _matches(value, hint):
        raise ConfigError(name, value, _describe(hint))


def _coerce(value: Any, hint: Any) -> Any:
    """Lenient reading of YAML scalars: PyYAML reads ``1e-5`` as a string, ints stand for floats."""
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if get_origin(hint) is list and isinstance(value, list):
        return [_coerce(v, get_args(hint)[0]) for v in value]
    return value


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a config dataclass (litgpt style)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if issubclass(klass, Config) and klass is not Config:
            docs.update(_own_field_docs(klass))
    return docs


def _own_field_docs(cls: type) -> dict[str, str]:
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for stmt, nxt in itertools.pairwise(body):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def _positive(x: float) -> bool:
    return x > 0


def _dropout(x: float) -> bool:
    return 0.0 <= x < 1.0


def _dims(xs: list[int]) -> bool:
    return all(x > 0 for x in xs)


# --------------------------------------------------------------------------------------------
# Dual-tower relevance model (seeds 000, 001)


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
        self.require("hidden_dims", _dims(self.hidden_dims), "positive integers")
        self.require("embedding_dim", self.embedding_dim > 0, "an integer > 0")
        self.require("dropout", _dropout(self.dropout), "a number in [0, 1)")


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
        self.require("hidden_dims", _dims(self.hidden_dims), "positive integers")
        self.require("embedding_dim", self.embedding_dim > 0, "an integer > 0")
        self.require("dropout", _dropout(self.dropout), "a number in [0, 1)")


@dataclass
class RelevanceHeadConfig(Config):
    hidden_dims: list[int] = field(default_factory=lambda: [16, 8])
    """Widths of each horizon head's hidden layers."""
    dropout: float = 0.2
    """Dropout inside the heads, in [0, 1)."""
    num_direction_classes: int = 3
    """Direction classes per horizon: positive, none, negative."""

    def validate(self) -> None:
        self.require("hidden_dims", _dims(self.hidden_dims), "positive integers")
        self.require("dropout", _dropout(self.dropout), "a number in [0, 1)")
        self.require("num_direction_classes", self.num_direction_classes >= 2, "an integer >= 2")


@dataclass
class DualTowerModelConfig(Config):
    context_tower: ContextTowerConfig = field(default_factory=ContextTowerConfig)
    """The context (news, policy, macro) tower."""
    stock_tower: StockTowerConfig = field(default_factory=StockTowerConfig)
    """The stock (price, technical, returns, volatility) tower."""
    head: RelevanceHeadConfig = field(default_factory=RelevanceHeadConfig)
    """Shared shape of the 7-day and 30-day relevance heads."""
    interaction: Literal["bilinear", "concat"] = "bilinear"
    """How the towers meet: 'bilinear' adds a learned context x stock product to the
    concatenated embeddings; 'concat' uses the concatenation alone (an ablation)."""


@dataclass
class LossConfig(Config):
    regression_weight_7d: float = 1.0
    """Weight of the 7-day relevance MSE."""
    regression_weight_30d: float = 1.0
    """Weight of the 30-day relevance MSE."""
    classification_weight_7d: float = 0.5
    """Weight of the 7-day direction cross-entropy."""
    classification_weight_30d: float = 0.5
    """Weight of the 30-day direction cross-entropy."""
    regularization_weight: float = 0.01
    """Weight of the tower orthogonality penalty."""
    magnitude_weight: float = 0.001
    """Weight of the embedding magnitude penalty (the seeds name the term, not its weight)."""

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            self.require(f.name, getattr(self, f.name) >= 0, "a number >= 0")


# --------------------------------------------------------------------------------------------
# Optimisation and training (shared by every model)


@dataclass
class OptimizerConfig(Config):
    optimizer_type: Literal["adam", "adamw"] = "adam"
    """Adam, or AdamW with decoupled weight decay."""
    base_learning_rate: float = 0.001
    """Learning rate of the heads and the context tower."""
    weight_decay: float = 1e-5
    """L2 penalty (Adam) or decoupled decay (AdamW)."""
    stock_tower_lr_multiplier: float = 0.5
    """The stock tower learns at this fraction of the base rate (it has more capacity)."""

    def validate(self) -> None:
        self.require("base_learning_rate", _positive(self.base_learning_rate), "a number > 0")
        self.require("weight_decay", self.weight_decay >= 0, "a number >= 0")
        self.require(
            "stock_tower_lr_multiplier", _positive(self.stock_tower_lr_multiplier), "a number > 0"
        )


@dataclass
class SchedulerConfig(Config):
    scheduler_type: Literal["cosine", "plateau", "none"] = "cosine"
    """Cosine annealing after a linear warm-up, reduce-on-plateau, or a constant rate."""
    total_epochs: int | None = None
    """Epochs the cosine curve spans; null follows the training epochs."""
    warmup_epochs: int = 5
    """Epochs of linear warm-up before the cosine decay; a shorter run warms up for at most
    all but its last epoch, so a 3-epoch run with the default still decays."""
    min_learning_rate: float = 1e-6
    """Floor of the cosine curve and of plateau reductions."""
    plateau_factor: float = 0.5
    """Plateau: multiply the rate by this when validation stalls."""
    plateau_patience: int = 5
    """Plateau: epochs without improvement before a reduction."""

    def validate(self) -> None:
        self.require(
            "total_epochs", self.total_epochs is None or self.total_epochs > 0, "null or > 0"
        )
        self.require("warmup_epochs", self.warmup_epochs >= 0, "an integer >= 0")
        if self.total_epochs is not None:
            self.require(
                "warmup_epochs",
                self.warmup_epochs < self.total_epochs,
                f"fewer than total_epochs ({self.total_epochs})",
            )
        self.require("min_learning_rate", self.min_learning_rate >= 0, "a number >= 0")
        self.require("plateau_factor", 0 < self.plateau_factor < 1, "a number in (0, 1)")
        self.require("plateau_patience", self.plateau_patience >= 0, "an integer >= 0")


@dataclass
class _TrainerSettings(Config):
    """Settings every trainer run shares; model-specific configs add their loss."""

    batch_size: int = 32
    """Samples per optimisation step."""
    epochs: int = 100
    """Upper bound on epochs; early stopping usually ends sooner."""
    early_stopping_patience: int = 15
    """Epochs without a validation improvement of at least min_delta before stopping."""
    min_delta: float = 1e-4
    """Smallest decrease of the validation loss that counts as an improvement."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm; 0 disables clipping."""
    ema_decay: float = 0.0
    """Validate, checkpoint and keep an exponential moving average of the weights with this
    decay per step (e.g. 0.995; 0 = off): a smoother estimate than the last step's weights."""
    seed: int = 42
    """Seeds torch, numpy and the data split so runs are reproducible."""
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    """Optimiser and per-component learning rates."""
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    """Learning-rate schedule."""

    def validate(self) -> None:
        self.require("batch_size", self.batch_size > 0, "an integer > 0")
        self.require("epochs", self.epochs > 0, "an integer > 0")
        self.require("early_stopping_patience", self.early_stopping_patience >= 0, ">= 0")
        self.require("min_delta", self.min_delta >= 0, "a number >= 0")
        self.require("max_grad_norm", self.max_grad_norm >= 0, "a number >= 0 (0 = off)")
        self.require("ema_decay", 0 <= self.ema_decay < 1, "a number in [0, 1) (0 = off)")
        self.require("seed", self.seed >= 0, "an integer >= 0")


@dataclass
class TrainingConfig(_TrainerSettings):
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
    horizons: list[int] = field(default_factory=lambda: [7, 30])
    """Label horizons in calendar days."""
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
        self.require("horizons", len(self.horizons) > 0 and _dims(self.horizons), "days > 0")
        for name in ("train_fraction", "val_fraction", "test_fraction"):
            self.require(name, 0 < getattr(self, name) < 1, "a number in (0, 1)")
        total = self.train_fraction + self.val_fraction + self.test_fraction
        self.require("test_fraction", math.isclose(total, 1.0), "fractions that sum to 1")
        self.require("neutral_z", self.neutral_z >= 0, "a number >= 0")
        self.require("time_aware_split", self.time_aware_split, "true (a shuffled split leaks)")
        self.require("relevance_threshold", 0 <= self.relevance_threshold < 1, "a number in [0, 1)")
        if self.purge_days is not None:
            self.require(
                "purge_days",
                self.purge_days >= max(self.horizons),
                f"null or at least the longest horizon ({max(self.horizons)} days)",
            )

    @property
    def effective_purge_days(self) -> int:
        return self.purge_days if self.purge_days is not None else max(self.horizons)


def _is_iso_date(text: str) -> bool:
    import datetime as dt

    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# LSTM with temporal attention (seed 003)


@dataclass
class LSTMModelConfig(Config):
    input_dim: int = 62
    """Stock features per time step."""
    hidden_dim: int = 128
    """LSTM hidden size; bidirectional outputs are projected back to this width."""
    num_lstm_layers: int = 2
    """Stacked LSTM layers."""
    num_attention_heads: int = 4
    """Heads of the temporal attention; must divide hidden_dim."""
    dropout_rate: float = 0.2
    """Dropout between LSTM layers, in attention and in the heads."""
    bidirectional: bool = True
    """Read the window in both directions."""
    head_hidden_dims: list[int] = field(default_factory=lambda: [64, 32])
    """Widths of each horizon head's hidden layers."""

    def validate(self) -> None:
        self.require("input_dim", self.input_dim > 0, "an integer > 0")
        self.require("hidden_dim", self.hidden_dim > 0, "an integer > 0")
        self.require("num_lstm_layers", self.num_lstm_layers > 0, "an integer > 0")
        self.require(
            "num_attention_heads",
            self.num_attention_heads > 0 and self.hidden_dim % self.num_attention_heads == 0,
            f"a positive divisor of hidden_dim ({self.hidden_dim})",
        )
        self.require("dropout_rate", _dropout(self.dropout_rate), "a number in [0, 1)")
        self.require("head_hidden_dims", _dims(self.head_hidden_dims), "positive integers")


@dataclass
class LSTMSequenceConfig(Config):
    sequence_length: int = 12
    """Time steps per input window."""
    step: Literal["weekly", "daily"] = "weekly"
    """Spacing of the steps: one per week (last trading day) or every trading day."""
    label_horizons: list[int] = field(default_factory=lambda: [7, 30])
    """Label horizons in calendar days."""
    normalize_features: bool = True
    """Standardise features with statistics of the training segment only."""

    def validate(self) -> None:
        self.require("sequence_length", self.sequence_length > 0, "an integer > 0")
        self.require("label_horizons", len(self.label_horizons) > 0, "at least one horizon")
        self.require("label_horizons", _dims(self.label_horizons), "days > 0")


@dataclass
class LSTMLossConfig(Config):
    regression_weight_7d: float = 1.0
    """Weight of the 7-day trend-score MSE."""
    classification_weight_7d: float = 0.5
    """Weight of the 7-day up/down cross-entropy."""
    regression_weight_30d: float = 1.0
    """Weight of the 30-day trend-score MSE."""
    classification_weight_30d: float = 0.5
    """Weight of the 30-day up/down cross-entropy."""

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            self.require(f.name, getattr(self, f.name) >= 0, "a number >= 0")


@dataclass
class LSTMTrainingConfig(_TrainerSettings):
    loss: LSTMLossConfig = field(default_factory=LSTMLossConfig)
    """Weights of the LSTM multi-task loss."""
    sequence: LSTMSequenceConfig = field(default_factory=LSTMSequenceConfig)
    """How input windows are cut."""


# --------------------------------------------------------------------------------------------
# Compact 3-class baselines (seed 002)


@dataclass
class SimpleLSTMConfig(Config):
    input_dim: int = 62
    """Features per step."""
    hidden_dim: int = 64
    """LSTM hidden units (seed 002: 64)."""
    num_layers: int = 2
    """Stacked LSTM layers (seed 002: 2)."""
    head_hidden_dims: list[int] = field(default_factory=lambda: [32])
    """Widths of the classification layers after the LSTM."""
    dropout: float = 0.2
    """Dropout between LSTM layers and in the head, in [0, 1)."""

    def validate(self) -> None:
        for name in ("input_dim", "hidden_dim", "num_layers"):
            self.require(name, getattr(self, name) > 0, "an integer > 0")
        self.require("head_hidden_dims", _dims(self.head_hidden_dims), "positive integers")
        self.require("dropout", 0 <= self.dropout < 1, "a number in [0, 1)")


@dataclass
class CompactDualTowerConfig(Config):
    context_dim: int = 25
    """Context features (news, policy, macro); the 3 group masks are added to them."""
    stock_dim: int = 62
    """Stock features."""
    tower_dim: int = 16
    """Width of each tower (seed 002: 16)."""
    dropout: float = 0.1
    """Dropout after each tower, in [0, 1)."""

    def validate(self) -> None:
        for name in ("context_dim", "stock_dim", "tower_dim"):
            self.require(name, getattr(self, name) > 0, "an integer > 0")
        self.require("dropout", 0 <= self.dropout < 1, "a number in [0, 1)")


# --------------------------------------------------------------------------------------------
# Two-tower recommender (seed 004)


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
        self.require("hidden_dims", _dims(self.hidden_dims), "positive integers")
        self.require("embedding_dim", self.embedding_dim > 0, "an integer > 0")
        self.require("first_dropout", _dropout(self.first_dropout), "a number in [0, 1)")
        self.require("dropout", _dropout(self.dropout), "a number in [0, 1)")
        self.require("learning_rate", _positive(self.learning_rate), "a number > 0")
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


# --------------------------------------------------------------------------------------------
# Everything at once (seed 001's ConfigManager)


@dataclass
class ConfigManager(Config):
    """All configs of a project in one YAML file."""

    model_config: DualTowerModelConfig = field(default_factory=DualTowerModelConfig)
    """Dual-tower architecture."""
    training_config: TrainingConfig = field(default_factory=TrainingConfig)
    """Dual-tower training."""
    data_config: DataConfig = field(default_factory=DataConfig)
    """Dataset recipe and split."""
    lstm_model_config: LSTMModelConfig = field(default_factory=LSTMModelConfig)
    """LSTM architecture."""
    lstm_training_config: LSTMTrainingConfig = field(default_factory=LSTMTrainingConfig)
    """LSTM training."""
    two_tower_config: TwoTowerConfig = field(default_factory=TwoTowerConfig)
    """Recommender model, training and routing."""

    def save_config(self, path: str | Path) -> None:
        self.save_yaml(path)

    @classmethod
    def load_config(cls, path: str | Path, *, partial: bool = False) -> ConfigManager:
        return cls.load_yaml(path, partial=partial)


@dataclass(frozen=True)
class FlatField:
    """One leaf field of a (nested) config, addressed by its dotted path, for forms."""

    path: str
    default: Any
    hint: Any
    doc: str

    @property
    def choices(self) -> tuple[Any, ...] | None:
        return get_args(self.hint) if get_origin(self.hint) is Literal else None


def flat_fields(cls: type[Config], prefix: str = "") -> list[FlatField]:
    """Every leaf field of ``cls`` with its default, type hint and docstring, depth first."""
    defaults = cls()
    docs = field_docs(cls)
    result: list[FlatField] = []
    for name, hint in _type_hints(cls).items():
        if name.startswith("_") or name not in {f.name for f in dataclasses.fields(cls)}:
            continue
        nested = _config_class(hint)
        if nested is not None:
            result += flat_fields(nested, f"{prefix}{name}.")
        else:
            result.append(
                FlatField(f"{prefix}{name}", getattr(defaults, name), hint, docs.get(name, ""))
            )
    return result


def flatten(data: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """{"optimizer": {"base_learning_rate": 0.001}} -> {"optimizer.base_learning_rate": 0.001}."""
    flat: dict[str, Any] = {}
    for name, value in (data or {}).items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def from_flat(cls: type[Config], values: dict[str, Any]) -> Config:
    """Build ``cls`` from {dotted path: value}; missing paths keep their defaults."""
    nested: dict[str, Any] = {}
    for path, value in values.items():
        target = nested
        *parents, leaf = path.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return cls.from_dict(nested, partial=True)


def config_reference() -> str:
    """Markdown reference of every config class: field, default and meaning (docs/config.md)."""
    lines = [
        "# Configuration reference",
        "",
        "Generated by `trendlab config docs > docs/config.md` from the field docstrings in",
        "`core/config.py`; a test fails when this file and the code disagree.",
        "",
        "Every config loads from YAML strictly: an unknown key, a missing key, a wrong type or an",
        "out-of-range value raises `ConfigError` naming the dotted field path, the value, what is",
        "allowed and the file. Load with `partial=True` (`--partial` on the CLI) for override",
        "files that name only what they change. Choices we made where the seeds were silent:",
        "",
        "- `SchedulerConfig.total_epochs` defaults to null, meaning the training epochs, so a",
        "  short run still anneals fully (the seeds pass 100 by hand).",
        "- `LossConfig.magnitude_weight` (0.001) weights the embedding-magnitude term, which",
        "  the seeds name without a weight; `regularization_weight` (0.01) weights orthogonality.",
        "- `DataConfig.purge_days` defaults to the longest label horizon and may not be shorter.",
        "",
    ]
    for name, cls in CONFIG_CLASSES.items():
        defaults = cls().to_dict()
        lines += [f"## {name}", "", "| field | default | meaning |", "| --- | --- | --- |"]
        for field_name, doc in field_docs(cls).items():
            value = defaults[field_name]
            shown = "(section)" if isinstance(value, dict) else f"`{value!r}`"
            lines.append(f"| `{field_name}` | {shown} | {' '.join(doc.split())} |")
        lines.append("")
    return "\n".join(lines)


CONFIG_CLASSES: dict[str, type[Config]] = {
    cls.__name__: cls
    for cls in (
        ContextTowerConfig,
        StockTowerConfig,
        RelevanceHeadConfig,
        DualTowerModelConfig,
        LossConfig,
        OptimizerConfig,
        SchedulerConfig,
        TrainingConfig,
        DataConfig,
        LSTMModelConfig,
        LSTMSequenceConfig,
        LSTMLossConfig,
        SimpleLSTMConfig,
        CompactDualTowerConfig,
        LSTMTrainingConfig,
        TwoTowerConfig,
        ConfigManager,
    )
}
"""Every public config class by name, for the CLI and for parametrised tests."""
