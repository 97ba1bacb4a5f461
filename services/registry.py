"""Every model Trendlab trains, by name, with what each part of the tool asks of it (timm's
``register_model`` is the example): the market models of ``core.market.models.MODELS``, read
when asked, so a model registered there is listed everywhere at once, and the two-tower
recommender. The CLI (`trendlab models`, `trendlab train`), the Train page's picker, the
sweeps, the estimates and the job manager ask an entry (``TRAINABLE[name]``) instead of
branching on the model's domain; docs/architecture.md shows how to add a model."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from core.config import Config
from core.market.config import DataConfig
from core.market.models import MODELS, count_parameters, create_model, model_spec
from core.market.trainables import market_trainable
from core.market.training import dataset_fields
from core.recsys.trainables import RECOMMENDER
from core.trainables import Trainable
from services import catalog
from services.catalog import DatasetInfo
from services.estimates import Estimate, market_estimate, recommender_estimate, with_start_up
from services.market.runs import label_coverage

MARKET_PAGES = frozenset({"evaluate", "predict"})
RECOMMENDER_PAGES = frozenset({"recommend"})


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: how it trains (its ``Trainable``: configs, presets, job kind, whose
    attributes it answers too) and what the rest of the tool asks of it."""

    trainable: Trainable
    datasets: Callable[[Engine], list[DatasetInfo]]
    """The stored datasets it can train on, newest first (the pickers list these)."""
    no_dataset: str
    """What a picker says when there is none yet."""
    fixed_fields: Callable[[dict[str, Any]], dict[str, Any]]
    """A stored dataset's recipe -> the model config fields it fixes (forms show them
    read-only)."""
    coverage: Callable[[Engine, str, Config], str] | None
    """(engine, dataset, model config) -> how many rows carry the targets it learns, in
    words; None where every row does."""
    sweepable: bool
    """Whether a sweep may search its settings (``services.sweeps.study``)."""
    estimate: Callable[..., Estimate]
    """Keywords engine, model_name, dataset_name, model_config, training -> the measured
    estimate of a run (``services.estimates``)."""
    size: Callable[[], str]
    """Its size in words, for `trendlab models`."""
    pages: frozenset[str]
    """The pages that judge and use its runs ('evaluate', 'predict', 'recommend')."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.trainable, name)


def _market_coverage(name: str) -> Callable[[Engine, str, Config], str]:
    def coverage(engine: Engine, dataset: str, config: Config) -> str:
        return label_coverage(
            engine=engine, model_name=name, model_config=config, dataset_name=dataset
        ).sentence()

    return coverage


def _market_fields(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def fields(recipe: dict[str, Any]) -> dict[str, Any]:
        data = DataConfig.from_dict(recipe.get("data_config", DataConfig().to_dict()))
        return dataset_fields(model_spec(name), data)

    return fields


def market_entry(name: str) -> ModelEntry:
    """The entry of ``core.market.models.MODELS[name]``."""
    return ModelEntry(
        market_trainable(MODELS[name]),
        datasets=lambda engine: catalog.datasets(engine=engine, recommender=False),
        no_dataset="Build one on the Data page first",
        fixed_fields=_market_fields(name),
        coverage=_market_coverage(name),
        sweepable=True,
        estimate=market_estimate,
        size=lambda: f"{count_parameters(create_model(name)):,} params",
        pages=MARKET_PAGES,
    )


RECOMMENDER_ENTRY = ModelEntry(
    RECOMMENDER,
    datasets=lambda engine: catalog.datasets(engine=engine, recommender=True),
    no_dataset="Create one with `trendlab recsys synthetic` or `recsys import`",
    fixed_fields=lambda _recipe: {},  # its widths follow the catalogue at training time
    coverage=None,
    sweepable=False,
    estimate=recommender_estimate,
    size=lambda: "size follows the catalogue",
    pages=RECOMMENDER_PAGES,
)


class Registry(Mapping[str, ModelEntry]):
    """Model name -> entry, read live: the market models as ``MODELS`` holds them now, then
    the recommender."""

    def _entries(self) -> dict[str, ModelEntry]:
        return {
            **{name: market_entry(name) for name in MODELS},
            RECOMMENDER.name: RECOMMENDER_ENTRY,
        }

    def __getitem__(self, name: str) -> ModelEntry:
        entries = self._entries()
        if name not in entries:
            raise KeyError(f"unknown model {name!r}; known models: {', '.join(entries)}")
        return entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())


TRAINABLE = Registry()
"""Every registered model, by name."""


def trainable(name: str) -> ModelEntry:
    return TRAINABLE[name]


def models_on(page: str) -> list[str]:
    """The models whose runs ``page`` ('evaluate', 'predict', 'recommend') judges or uses."""
    return [name for name, entry in TRAINABLE.items() if page in entry.pages]


def preset_configs(name: str, preset: str) -> tuple[Config, Config]:
    """The model and training configs of a model's preset."""
    return trainable(name).preset_configs(preset)


def estimate_training(
    *,
    engine: Engine,
    model_name: str,
    dataset_name: str,
    model_config: Config,
    training: Config,
    in_worker: bool = True,
) -> Estimate:
    """How long a run of ``model_name`` will take here, measured (``services.estimates``).
    ``in_worker``: the run starts a worker process (a job, as the pages and the API start
    one), whose start is counted; False where this process trains (the CLI)."""
    found = trainable(model_name).estimate(
        engine=engine,
        model_name=model_name,
        dataset_name=dataset_name,
        model_config=model_config,
        training=training,
    )
    return with_start_up(found, in_worker=in_worker)
