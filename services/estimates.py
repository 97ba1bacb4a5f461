"""How long a training run will take on this machine, before it starts.

A short measured calibration, not a guess: the model is built as configured (sized to the
dataset's training rows as the run will be) and trained for a few real batches of the real
dataset (market models), or for one epoch (the recommender, whose epochs are short), and the
time per batch is scaled to the run's batches and epochs. The evaluation at the end is
counted too: the model's forward passes over the test rows, and the baselines' fits,
measured on a sample of the training rows and scaled to all of them, or nothing where the
cache already holds them (recommender: one fit of each baseline times the fits its tuning
makes). Training is an upper bound in epochs: early stopping may end it sooner.
"""

from __future__ import annotations

import functools
import math
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from sqlalchemy import Engine

from core.batches import TensorBatches
from core.config import Config
from core.devices import run_threads, torch_threads
from core.market.baselines import FITTED, MARKET_BASELINES
from core.market.config import DataConfig, MarketTrainingConfig
from core.market.evaluation import BASELINES
from core.market.features import FEATURES, MASK_COLUMNS
from core.market.loaders import Loaders
from core.market.models import ModelSpec, create_model, model_spec
from core.market.predictions import (
    BaselineCache,
    baseline_predictions,
    fit_baseline_models,
)
from core.market.training import build_loaders, fit_to_data, size_to_rows, sizing_sentence
from core.memory import available_memory
from core.optimizers import create_optimizer
from core.recsys.baselines import BPR, EASE, ItemKNN, ease_item_limit
from core.recsys.training import train_recommender
from core.recsys.tuning import EASE_LAMBDAS, KNN_NEIGHBOURS, KNN_SHRINKAGE
from core.trainer import Trainer
from services import catalog
from services.jobs.progress import format_duration
from storage import DataHome
from storage.recsys import load_recsys_data
from storage.repository import session_scope

CALIBRATION_BATCHES = 6
WARMUP_BATCHES = 2
SAMPLE_ROWS = (12_000, 24_000)
"""Training rows the baselines' fits are timed on, to extrapolate to all the rows: both above
the 10,000 rows from which boosting stops early on a validation split, as the real fit does."""

BASELINE_WIDTH = len(FEATURES) + len(MASK_COLUMNS)
"""Columns the baselines are fitted on (a sequence model's rows are timed as wide)."""


@dataclass(frozen=True)
class Estimate:
    seconds_per_epoch: float
    epochs: int
    """Epochs the run may train, sized to its rows as the run will be; early stopping
    may end it sooner."""
    evaluation_seconds: float
    """The evaluation when training ends: the model and the baselines on the test rows
    (market), tuning and evaluating the baselines (recommender)."""
    measured: str
    """What was measured, in words (for the page's help text)."""
    fixed_seconds: float = 0.0
    """Training time that does not grow with the epochs (the recommender's least-squares
    sweeps)."""
    rows: int = 0
    """Training rows (market): what the epochs and batch are sized to."""
    sizing: str | None = None
    """What sizing to the rows changed, in words (None: nothing)."""
    start_up_seconds: float = 0.0
    """Before the first step: the worker's start, reading the dataset and building the
    model's inputs."""

    @property
    def training_seconds(self) -> float:
        return self.fixed_seconds + self.seconds_per_epoch * self.epochs

    @property
    def seconds(self) -> float:
        return self.start_up_seconds + self.training_seconds + self.evaluation_seconds

    def for_epochs(self, epochs: int) -> Estimate:
        """This estimate had the run trained ``epochs`` (early stopping ends runs sooner)."""
        return replace(self, epochs=epochs)

    def for_training(self, training: Config) -> Estimate:
        """This estimate for ``training``'s epochs (the batch, hence the time of an epoch,
        does not depend on them): the page measures once and follows its epochs field."""
        if isinstance(training, MarketTrainingConfig):
            sized = training.sized_for(self.rows)
            return replace(
                self, epochs=sized.epochs, sizing=sizing_sentence(training, sized, self.rows)
            )
        return replace(self, epochs=training.epochs)

    def sentence(self) -> str:
        """One line: the total, then its parts."""
        after = f" after {format_duration(self.fixed_seconds)}" if self.fixed_seconds else ""
        return (
            f"about {format_duration(self.seconds)}: start-up "
            f"{format_duration(self.start_up_seconds)}, training at most {self.epochs} epochs of "
            f"{format_duration(self.seconds_per_epoch)}{after} (early stopping may end it "
            f"sooner), evaluation {format_duration(self.evaluation_seconds)}"
        )


def with_start_up(found: Estimate, *, in_worker: bool) -> Estimate:
    """``found`` with the worker's start added where the run starts one (a job, as the pages
    and the API start one); not where this process trains (the CLI)."""
    starting = worker_start_seconds() if in_worker else 0.0
    return replace(found, start_up_seconds=found.start_up_seconds + starting)


@functools.cache
def worker_start_seconds() -> float:
    """A worker's start on this machine, timed once per process: a fresh interpreter
    importing what a job imports before its first step."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {', '.join(WORKER_IMPORTS)}"], check=False)
    return time.perf_counter() - started


WORKER_IMPORTS = (
    "services.jobs.worker",
    "services.jobs.kinds",
    "services.market.runs",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "matplotlib.pyplot",
)
"""What a worker imports: before its first step, then for the baselines' fits and the
history plot at its end (this process has most of them loaded already, so the calibration
would not see them; the recommender's path imports less)."""


def market_estimate(
    *, engine: Engine, model_name: str, dataset_name: str, model_config: Config, training: Config
) -> Estimate:
    """A market model's run: its start-up, training and evaluation, measured here."""
    started = time.perf_counter()
    dataset = catalog.dataset(engine=engine, name=dataset_name)
    data = DataConfig.from_dict(dataset.recipe.get("data_config", DataConfig().to_dict()))
    frame = catalog.dataset_frame(engine=engine, name=dataset_name, single=True)
    config = fit_to_data(model_spec(model_name), model_config, data)
    spec = model_spec(model_name, config)
    loaders = build_loaders(spec, frame, data=data, training=training, seed=training.seed)
    loading = time.perf_counter() - started
    sized = size_to_rows(training, loaders)
    model = create_model(model_name, config)
    trainer = Trainer(  # the run's own step: its threads, precision, clipping and optimiser
        model,
        spec.make_loss(getattr(sized, "loss", None), data.horizons),
        create_optimizer(model, sized.optimizer),
        inputs=spec.inputs,
        settings=sized,
    )
    model.train()
    batches = iter(loaders.train)
    elapsed, steps = 0.0, 0
    with torch_threads(sized.threads):
        for index in range(WARMUP_BATCHES + CALIBRATION_BATCHES):
            batch = next(batches, None)
            if batch is None:
                break
            started = time.perf_counter()
            trainer.train_step(batch)
            if index >= WARMUP_BATCHES:
                elapsed, steps = elapsed + time.perf_counter() - started, steps + 1
    per_batch = elapsed / max(steps, 1)
    # A forward pass over a batch is about a third of a training step.
    per_epoch = per_batch * (len(loaders.train) + len(loaders.val) / 3)
    cache = BaselineCache(DataHome.from_env().baselines, dataset.content_hash, writable=False)
    with run_threads(sized.threads):  # as the run evaluates: its BLAS pools limited too
        baselines, fitted = _baseline_seconds_market(spec, frame, loaders, sized.seed, cache)
    forward = per_batch / 3 * len(loaders.test) * (1 + FORWARD_PASSES_IN_EVALUATION)
    scoring = SCORING_SECONDS_PER_ROW * loaders.test.num_rows
    rows = loaders.train.num_rows
    return Estimate(
        per_epoch,
        training.epochs,
        baselines + forward + scoring,
        f"{steps} training steps of {sized.batch_size} rows took {per_batch * 1000:.0f} ms "
        f"each; an epoch is {len(loaders.train)} steps; reading the dataset and building the "
        f"model's inputs took {loading:.1f} s; {fitted}",
        rows=rows,
        start_up_seconds=loading,
    ).for_training(training)


FORWARD_PASSES_IN_EVALUATION = 6
"""Forward passes over the test rows an evaluation makes after the predictions: the
context groups' permutations (3 groups x 2 repeats)."""
SCORING_SECONDS_PER_ROW = 4e-5
"""Scoring, intervals and portfolios per test row (the rest of an evaluation), measured
on the 500-ticker universe on the 2-core benchmark machine."""


def _baseline_seconds_market(
    spec: ModelSpec, frame: Any, loaders: Loaders, seed: int, cache: BaselineCache
) -> tuple[float, str]:
    """The baselines' fits when the run ends; 0 where the cache already holds them for this
    split. Their shared preparation is timed on a tiny sample (it reads the whole dataset
    whatever the sample); the linear and boosting fits at two sample sizes and extrapolated
    to all the rows: each fit's time linearly in the rows, and boosting's share of its rounds
    (it stops early) growing with each doubling of the rows as it grew from the first
    sample to the second, up to all of them."""
    names = [
        name
        for name in BASELINES
        if cache.load(cache.path(spec, loaders, seed=seed, name=name)) is None
    ]
    if not names:
        return 0.0, "the baselines are already fitted for this split"
    generator = torch.Generator().manual_seed(seed)

    def rows(part: TensorBatches, count: int) -> torch.Tensor:
        return torch.randperm(part.num_rows, generator=generator)[:count].sort().values

    tiny = replace(
        loaders,
        train=loaders.train.subset(rows(loaders.train, 500)),
        test=loaders.test.subset(rows(loaders.test, 500)),
    )
    timings: dict[str, float] = {}
    cheap = [n for n in names if n not in FITTED]
    baseline_predictions(spec, frame, tiny, seed=seed, names=cheap, timings=timings)
    preparing = timings["prepare"]
    fitted = [n for n in names if n in FITTED]
    total = loaders.train.num_rows
    if not fitted:
        return preparing, f"preparing the baselines took {preparing:.1f} s"
    x_test, _ = _matrices(loaders.test, rows(loaders.test, 1000), spec, loaders.horizons)
    x, targets = _matrices(loaders.train, rows(loaders.train, 500), spec, loaders.horizons)
    fit_baseline_models(fitted, targets, x, x_test, seed, {})  # warm-up: first calls load code
    points = []
    for count in sorted({min(total, n) for n in SAMPLE_ROWS}):
        x, targets = _matrices(loaders.train, rows(loaders.train, count), spec, loaders.horizons)
        found: dict[str, float] = {}
        started = time.perf_counter()
        fit_baseline_models(fitted, targets, x, x_test, seed, found)
        points.append((count, found, time.perf_counter() - started))
    (n1, first, t1), (n2, second, t2) = points[0], points[-1]
    per_row = max(0.0, (t2 - t1) / (n2 - n1)) if n2 > n1 else t2 / max(n2, 1)
    wall = t2 + per_row * max(total - n2, 0)

    stopping = [n for n in fitted if MARKET_BASELINES[n].early_stopping]

    def share(found: dict[str, float]) -> float:
        """The share of their rounds the early-stopping fits ran."""
        bound = sum(found.get(f"{n}_bound", 0.0) for n in stopping)
        return sum(found.get(n, 0.0) for n in stopping) / bound if bound else 1.0

    grown = share(second) + (share(second) - share(first)) * math.log2(max(total / n2, 1.0))
    rounds = min(1.0, max(share(second), grown))
    stops = sum(second.get(n, 0.0) for n in stopping)
    stops /= max(sum(second.get(n, 0.0) for n in fitted), 1e-9)
    fitting = wall * (1 - stops + stops * rounds / share(second))
    stopped = (
        f" ({' and '.join(stopping)} stopped after {share(second):.0%} of its rounds)"
        if stopping
        else ""
    )
    return preparing + fitting, (
        f"fitting the baselines on {n1:,} and {n2:,} training rows took {t1:.1f} and "
        f"{t2:.1f} s after {preparing:.1f} s of preparation{stopped}: "
        f"{format_duration(preparing + fitting)} for {total:,} rows"
    )


def _matrices(
    part: TensorBatches, rows: torch.Tensor, spec: ModelSpec, horizons: Sequence[int]
) -> tuple[np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Features and targets of some rows of a segment, as the baselines' fits read them."""
    batch = next(iter(part.subset(rows).with_batch_size(len(rows))))
    inputs = [batch[key].numpy() for key in ("context", "context_mask", "stock") if key in batch]
    if "sequence" in batch:  # the baselines read the dataset's rows: the window's last step
        last = batch["sequence"][:, -1].numpy()
        noise = np.random.default_rng(0).standard_normal((len(rows), BASELINE_WIDTH))
        inputs = [last, noise[:, : BASELINE_WIDTH - last.shape[1]].astype(np.float32)]
    targets = {
        h: (
            batch[spec.target.columns(h)[0]].numpy(),
            batch[spec.target.columns(h)[1]].numpy().astype(int),
        )
        for h in horizons
    }
    return _standardised(np.concatenate(inputs, axis=1)), targets


def _standardised(x: np.ndarray) -> np.ndarray:
    """As the baselines' fits read their matrix (``core.market.predictions``): each column
    standardised, missing values 0, float64. The logistic regression's time depends on it
    (unscaled float32 rows took it twice as long)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column
        mean = np.nan_to_num(np.nanmean(x, axis=0, dtype=np.float64))
        spread = np.nanstd(x, axis=0, dtype=np.float64, ddof=1)
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    return np.nan_to_num((x - mean) / spread)


def recommender_estimate(
    *, engine: Engine, model_name: str, dataset_name: str, model_config: Config, training: Config
) -> Estimate:
    """The recommender's run: one epoch measured, and its baselines' fits."""
    started = time.perf_counter()
    with session_scope(engine) as session:
        data = load_recsys_data(session=session, name=dataset_name)
    loading = time.perf_counter() - started
    one_epoch = replace(training, epochs=1, als_sweeps=1)
    started = time.perf_counter()
    result = train_recommender(data, model_config, one_epoch, baselines=False)
    total = time.perf_counter() - started
    per_epoch = result.history[0]["seconds"] if result.history else total
    per_sweep = result.sweeps[0]["seconds"] if result.sweeps else 0.0
    sweeps = per_sweep * training.als_sweeps
    baselines = _baseline_seconds(result.catalogue.history(result.split.train).matrix)
    solving = (
        f"{training.als_sweeps} least-squares sweeps of the id tables at {per_sweep:.1f} s, then "
        if result.sweeps
        else ""
    )
    return Estimate(
        per_epoch,
        training.epochs,
        baselines,
        f"{solving}one epoch took {per_epoch:.1f} s ({total:.1f} s with the catalogue's "
        f"encoding); tuning and evaluating the baselines about {baselines:.0f} s more",
        fixed_seconds=sweeps,
        start_up_seconds=loading,
    )


BPR_EPOCHS_EXPECTED = 105
"""Epochs BPR usually trains, its validation every epoch included (the best near 95, then 10
without progress, on the online-retail log): the estimate's multiplier for one measured BPR
epoch."""


def _baseline_seconds(train: Any) -> float:
    """The baselines' cost from one fit of each, times the fits evaluation makes (item-kNN's
    and EASE's grids, BPR's usual epochs)."""
    started = time.perf_counter()
    ItemKNN(train, max(KNN_NEIGHBOURS))
    seconds = (time.perf_counter() - started) * len(KNN_SHRINKAGE)
    if train.shape[1] <= ease_item_limit(available_memory()):
        started = time.perf_counter()
        path = EASE.path(train, EASE_LAMBDAS[:2])
        next(path)  # the decomposition and the first lambda
        first = time.perf_counter()
        next(path)  # each further lambda
        per_lambda = time.perf_counter() - first
        seconds += first - started + per_lambda * (len(EASE_LAMBDAS) - 1)
    started = time.perf_counter()
    BPR(train, epochs=1)
    return seconds + (time.perf_counter() - started) * BPR_EPOCHS_EXPECTED
