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
import textwrap
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Literal, Self, get_args, get_origin

import yaml

from core.type_checks import coerce, describe, matches, type_hints


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
            _check_type(f.name, value, type_hints(type(self))[f.name])
        self.validate()

    def validate(self) -> None:
        """Range and consistency checks; subclasses override and call ``require``."""

    def require(self, name: str, ok: bool, allowed: str) -> None:
        if not ok:
            raise ConfigError(name, getattr(self, name), allowed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Rewrite keys an older Trendlab wrote (runs and checkpoints keep their configs), so
        they still load; subclasses whose fields changed override it."""
        return data

    @classmethod
    def from_dict(cls, data: Any, *, partial: bool = False, prefix: str = "") -> Self:
        """Build from plain data. Unknown keys are errors; missing keys too unless ``partial``.

        ``partial=True`` fills missing keys with defaults, for override files.
        """
        if not isinstance(data, dict):
            raise ConfigError(prefix or cls.__name__, data, "a mapping of field names to values")
        data = cls.upgrade(dict(data))
        hints = type_hints(cls)
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
                if partial and isinstance(value, dict) and f.default_factory is not MISSING:
                    # a partial section overrides this class's own default for it, which
                    # may differ from the section class's defaults (AdamW for the recommender)
                    value = _merged(f.default_factory().to_dict(), value)
                value = nested.from_dict(value, partial=partial, prefix=path)
            kwargs[f.name] = coerce(value, hints[f.name])
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


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s keys put in, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


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


def _config_class(hint: Any) -> type[Config] | None:
    return hint if isinstance(hint, type) and issubclass(hint, Config) else None


def _check_type(name: str, value: Any, hint: Any) -> None:
    if not matches(value, hint):
        raise ConfigError(name, value, describe(hint))


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


def positive(x: float) -> bool:
    return x > 0


def is_dropout(x: float) -> bool:
    return 0.0 <= x < 1.0


def positive_dims(xs: list[int]) -> bool:
    return all(x > 0 for x in xs)


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
        self.require("base_learning_rate", positive(self.base_learning_rate), "a number > 0")
        self.require("weight_decay", self.weight_decay >= 0, "a number >= 0")
        self.require(
            "stock_tower_lr_multiplier", positive(self.stock_tower_lr_multiplier), "a number > 0"
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
class BaseTrainingConfig(Config):
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
    threads: int = 1
    """Torch threads while training (0 keeps torch's own setting: one per core, or what
    Ray reserved for the job). One is the default because it was as fast or faster on
    nearly every line measured on the 2-core benchmark machine (bench
    models.thread_settings), and where other processes share the cores (the server's job,
    a CLI run, a browser) a second thread waits on them: beside two busy processes a
    dual-tower step at batch 32 ran at about half the speed on two threads. More threads
    pay on a quiet machine with many cores and large batches (the LSTM at batch 1024)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Number format of the training steps' forward pass: 'fp32', or 'bf16' (torch autocast:
    matrix products and the LSTM in bfloat16; the loss reads the outputs in fp32, and
    weights, gradients, the optimiser, validation, checkpoints and predictions stay fp32).
    bf16 pays on a GPU and on a CPU with bfloat16 units (AVX512-BF16 / AMX: 1.3x-2.5x at
    batch 1024 on the benchmark machine, bench models.train_speedup; the dual tower at batch
    32 is slower); on other CPUs it is emulated and slower. Results differ from fp32 in the
    last digits, so compare runs of the same precision."""
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
        self.require("threads", self.threads >= 0, "an integer >= 0 (0 = torch's setting)")


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
    for name, hint in type_hints(cls).items():
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
