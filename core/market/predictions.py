"""Predictions on the test rows, the model's and each baseline's, and what they are scored
against.

Every predictor, model or baseline, becomes a frame of (date, ticker, score_hd, class_hd)
on the test rows; ``outcomes`` gathers, for the same rows, the targets, the oracle (synthetic
data) and the returns that ``core.market.evaluation`` scores them against.

Baselines, fit on the training rows the model saw (features standardised on them):
majority class, momentum sign (sign of the 21-day return; on a cross-sectional dataset of its
robust z-score across the day, so above or below the day's median), ridge and logistic
regression,
HistGradientBoosting regressor and classifier, persistence for co-movement (relevance)
targets (the trailing realised relevance over the window ending on the row's date, the
forecast any risk model starts from: ``core.market.relevance.trailing_relevance``), and the
oracle on synthetic data. A baseline that does not apply to a target (persistence to a
return target, the oracle without oracle columns) is left out.

Fitting them is most of an evaluation on a large universe (gradient boosting on 740,000
rows), and every run on the same split fits the same baselines: a ``BaselineCache`` keeps
each baseline's predictions on disk, keyed by the dataset's content, the target, the
training and test rows and the seed, so they are fitted once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from core.market.baselines import FITTED, MARKET_BASELINES, Known, oracle_column
from core.market.features import CONTEXT_FEATURES, FEATURES, MASK_COLUMNS, STOCK_FEATURES
from core.market.loaders import Loaders, stock_values
from core.market.models import ModelSpec
from core.market.relevance import ContextFactor, trailing_relevance


def horizons_in(frame: pd.DataFrame) -> list[int]:
    """The horizons a predictions frame holds scores for (``score_7d`` -> 7), in order."""
    found = (re.fullmatch(r"score_([0-9]+)d", str(c)) for c in frame.columns)
    return [int(m.group(1)) for m in found if m]


@torch.no_grad()
def model_predictions(
    spec: ModelSpec,
    model: nn.Module,
    loader: Any,
    device: str | torch.device = "cpu",
    *,
    extras: bool = False,
) -> pd.DataFrame:
    """Scores and classes of ``model`` on every row of ``loader``, with the row's date/ticker.

    With ``extras``: the attention weights per input step (``attention_0`` ...) of sequence
    models, and a 2-D principal-component projection of each tower's embedding
    (``context_pc1``, ``context_pc2``, ``stock_pc1``, ...) of dual-tower models.
    """
    model = model.to(device).eval()
    columns: dict[str, list[np.ndarray]] = {}
    for batch in loader:
        outputs = model(*(batch[k].to(device) for k in spec.inputs))
        for h in model.config.horizons:
            score, probs = spec.readout(outputs, h)
            columns.setdefault(f"score_{h}d", []).append(score.cpu().numpy())
            columns.setdefault(f"class_{h}d", []).append(probs.argmax(-1).cpu().numpy())
            for i in range(probs.shape[-1]):
                columns.setdefault(f"prob{i}_{h}d", []).append(probs[:, i].cpu().numpy())
        if extras:
            for name in ("attention_weights", "context_embedding", "stock_embedding"):
                if name in outputs:
                    columns.setdefault(name, []).append(outputs[name].cpu().numpy())
    frame = loader.meta[["date", "ticker"]].reset_index(drop=True).copy()
    matrices = {}
    for name, parts in columns.items():
        if parts[0].ndim == 1:
            frame[name] = np.concatenate(parts)
        else:
            matrices[name] = np.concatenate(parts)
    if "attention_weights" in matrices:
        for step, weights in enumerate(matrices.pop("attention_weights").T):
            frame[f"attention_{step}"] = weights
    for name, embedding in matrices.items():
        tower = name.removesuffix("_embedding")
        for component, values in enumerate(project_2d(embedding).T, start=1):
            frame[f"{tower}_pc{component}"] = values
    return frame


def project_2d(matrix: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, 2): the rows on their first two principal components (zeros when the
    rows do not span two directions)."""
    centred = matrix - matrix.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projection = centred @ components[:2].T
    return np.pad(projection, ((0, 0), (0, 2 - projection.shape[1])))


CACHE_VERSION = 1
"""Part of every cache key: raise it when a baseline's fitting changes."""


@dataclass(frozen=True)
class BaselineCache:
    """Baseline predictions kept as Parquet files in ``folder``, one per baseline and
    question, for the dataset whose content hash is ``dataset``. ``writable`` false reads
    what is there and keeps nothing new."""

    folder: Path
    dataset: str
    writable: bool = True

    def path(self, spec: ModelSpec, loaders: Loaders, *, seed: int, name: str) -> Path:
        question = [
            f"v{CACHE_VERSION}",
            self.dataset,
            spec.targets,
            name,
            str(seed),
            str(loaders.cross_sectional),
            ",".join(map(str, loaders.horizons)),
            _rows_hash(loaders.train.meta),
            _rows_hash(loaders.test.meta),
        ]
        key = hashlib.sha256("|".join(question).encode()).hexdigest()[:32]
        return self.folder / f"{name}-{key}.parquet"

    def load(self, path: Path) -> pd.DataFrame | None:
        try:
            return pd.read_parquet(path) if path.is_file() else None
        except (OSError, ValueError):  # a damaged file is fitted again
            return None

    def keep(self, path: Path, frame: pd.DataFrame) -> None:
        if not self.writable:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        frame.to_parquet(partial, index=False)
        os.replace(partial, path)  # readers never see half a file


def _rows_hash(meta: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(meta[["date", "ticker"]], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def baseline_predictions(
    spec: ModelSpec,
    dataset: pd.DataFrame,
    loaders: Loaders,
    *,
    seed: int = 0,
    names: Sequence[str] | None = None,
    cache: BaselineCache | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, pd.DataFrame]:
    """Each baseline's predictions on the test rows, fit on the training rows; read from
    ``cache`` where it holds them, and kept there when fitted. ``timings`` receives the
    seconds each fitted baseline took, and the shared preparation's (``prepare``)."""
    names = list(MARKET_BASELINES) if names is None else names
    if cache is None:
        return _fit_baselines(spec, dataset, loaders, seed=seed, names=names, timings=timings)
    paths = {name: cache.path(spec, loaders, seed=seed, name=name) for name in names}
    types = loaders.test.meta.dtypes.to_dict()
    found = {name: cache.load(path) for name, path in paths.items()}
    found = {name: None if f is None else f.astype(types) for name, f in found.items()}
    missing = [name for name, frame in found.items() if frame is None]
    if missing:
        fitted = _fit_baselines(spec, dataset, loaders, seed=seed, names=missing, timings=timings)
        for name, frame in fitted.items():
            cache.keep(paths[name], frame)
            found[name] = frame
    return {name: frame for name, frame in found.items() if frame is not None}


FIT_THREADS = max(1, min(2, os.cpu_count() or 1))
"""The linear and boosting fits (one per horizon and head) run on this many threads, each
fit on one: the fits release the GIL, so two cores halve an evaluation of 500 tickers."""


def _fit_baselines(
    spec: ModelSpec,
    dataset: pd.DataFrame,
    loaders: Loaders,
    *,
    seed: int,
    names: Sequence[str],
    timings: dict[str, float] | None = None,
) -> dict[str, pd.DataFrame]:
    """Fit ``names`` on the training rows and predict the test rows (see the module)."""
    started = time.perf_counter()
    timings = {} if timings is None else timings
    columns = [*FEATURES, *MASK_COLUMNS]
    # One float32 matrix of the features (stock features on the day's scale where the model
    # read them so), standardised on the training rows: no copy of the dataset frame.
    values = np.array(dataset[columns].to_numpy(dtype=np.float32), copy=True)  # writable
    if loaders.cross_sectional:
        stock = [columns.index(c) for c in STOCK_FEATURES]
        values[:, stock] = stock_values(dataset, STOCK_FEATURES, cross=True)
    train_rows, test_rows = (
        _positions(dataset, loaders.train.meta),
        _positions(dataset, loaders.test.meta),
    )
    x_train, x_test = values[train_rows], values[test_rows]
    momentum = x_test[:, columns.index("ret_21d")].copy()  # before standardising
    del values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: mean 0, std 1
        mean = np.nan_to_num(np.nanmean(x_train, axis=0, dtype=np.float64))
        spread = np.nanstd(x_train, axis=0, dtype=np.float64, ddof=1)
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    for x in (x_train, x_test):
        x -= mean.astype(np.float32)
        x /= spread.astype(np.float32)
        x[np.isnan(x)] = 0.0
    # One float64 copy all the fits share: boosting converts its input to float64, so two
    # fits side by side would each make their own (0.5 GB apiece on 500 tickers).
    x_train, x_test = x_train.astype(np.float64), x_test.astype(np.float64)
    labels = [c for h in loaders.horizons for c in spec.target.columns(h)]
    train = dataset[labels].iloc[train_rows]
    test = dataset[["date", "ticker"]].iloc[test_rows].reset_index(drop=True)

    @functools.cache
    def trailing() -> pd.DataFrame | None:
        """The trailing relevance of the test rows, for the baselines that read it; its time
        counts as preparation (what an estimate reads)."""
        if spec.targets != "relevance":
            return None
        begun = time.perf_counter()
        found = _trailing(dataset, test, loaders)
        timings["prepare"] = timings.get("prepare", 0.0) + time.perf_counter() - begun
        return found

    targets = {
        h: (
            train[spec.target.columns(h)[0]].to_numpy(),
            train[spec.target.columns(h)[1]].to_numpy().astype(int),
        )
        for h in loaders.horizons
    }
    timings["prepare"] = time.perf_counter() - started
    fitted = fit_baseline_models(
        [n for n in names if n in FITTED], targets, x_train, x_test, seed, timings
    )
    known = Known(spec, dataset, test_rows, targets, momentum, trailing, fitted, len(test))
    results: dict[str, pd.DataFrame] = {}
    for name in names:
        if name not in MARKET_BASELINES:
            known_names = ", ".join(MARKET_BASELINES)
            raise ValueError(f"unknown baseline {name!r}; known: {known_names}")
        frame = test[["date", "ticker"]].copy()
        for h in loaders.horizons:
            predicted = MARKET_BASELINES[name].predict(known, name, h)
            if predicted is None:  # not defined on this data (no oracle, no trailing figure)
                break
            frame[f"score_{h}d"], frame[f"class_{h}d"] = predicted
        else:
            results[name] = frame
    return results


def _positions(dataset: pd.DataFrame, meta: pd.DataFrame) -> np.ndarray:
    """Where each (date, ticker) of ``meta`` is in ``dataset`` (meta's order)."""
    keys = dataset[["date", "ticker"]].assign(_row=np.arange(len(dataset)))
    found = meta[["date", "ticker"]].merge(keys, on=["date", "ticker"], how="left")["_row"]
    if found.isna().any():
        raise ValueError(f"{int(found.isna().sum())} rows of the split are not in the dataset")
    return found.to_numpy(dtype=np.int64)


def fit_baseline_models(
    names: Sequence[str],
    targets: dict[int, tuple[np.ndarray, np.ndarray]],
    x_train: np.ndarray,
    x_test: np.ndarray,
    seed: int,
    timings: dict[str, float],
) -> dict[tuple[str, int, str], np.ndarray]:
    """The fitted baselines' test predictions (``FITTED``), per (name, horizon, head),
    fitted on ``FIT_THREADS`` threads. ``timings`` gets each name's fitting seconds
    (summed over its fits) and, for those that stop early, ``{name}_bound``: their fits'
    seconds had each run all its rounds (what an estimate scales from a sample)."""

    def fit(model: Any, y: np.ndarray) -> tuple[np.ndarray, float, float]:
        # One OpenMP thread a fit: with OMP_WAIT_POLICY=PASSIVE (core/__init__.py) every one
        # of the thousands of small parallel regions in a boosting fit wakes sleeping
        # threads, and two threads took twice as long as one (3 fits of 20k x 87: 6.1 s vs
        # 2.9 s); two fits side by side use the two cores instead.
        started = time.perf_counter()
        with threadpool_limits(limits=1, user_api="openmp"):
            predicted = model.fit(x_train, y).predict(x_test)
        seconds = time.perf_counter() - started
        rounds, most = getattr(model, "n_iter_", None), getattr(model, "max_iter", None)
        bound = seconds * most / rounds if isinstance(rounds, int) and most else seconds
        return predicted, seconds, bound

    jobs = {
        (name, h, head): (model, y)
        for name in names
        for h, (y_score, y_class) in targets.items()
        for head, model, y in zip(
            ("score", "class"),
            MARKET_BASELINES[name].estimators(seed),
            (y_score, y_class),
            strict=True,
        )
    }
    with ThreadPoolExecutor(max_workers=FIT_THREADS) as pool:
        futures = {key: pool.submit(fit, model, y) for key, (model, y) in jobs.items()}
        done = {key: future.result() for key, future in futures.items()}
    for name in names:
        timings[name] = sum(s for key, (_, s, _) in done.items() if key[0] == name)
        if MARKET_BASELINES[name].early_stopping:
            timings[f"{name}_bound"] = sum(b for key, (_, _, b) in done.items() if key[0] == name)
    timings["fit_threads"] = FIT_THREADS
    return {key: predicted for key, (predicted, _, _) in done.items()}


def _trailing(dataset: pd.DataFrame, test: pd.DataFrame, loaders: Loaders) -> pd.DataFrame:
    """The trailing relevance of the test rows (``test``'s order), from the factor the
    dataset's labels were made with (its ``context_factor``; datasets built before it kept
    none refit the factor on the run's training dates, as leak-free but not identical)."""
    if "context_factor" in dataset.columns:
        factor = dataset.groupby("date")["context_factor"].first()
    else:
        train_end = pd.Timestamp(loaders.train.meta["date"].max())
        fitted = ContextFactor.fit(dataset, columns=CONTEXT_FEATURES, train_end=train_end)
        factor = fitted.values(dataset)
    rows = dataset[["date", "ticker", "ret_1d"]].reset_index(drop=True)
    trailing = pd.concat([rows, trailing_relevance(rows, factor, loaders.horizons)], axis=1)
    return test[["date", "ticker"]].merge(trailing, on=["date", "ticker"], how="left")


def outcome_columns(spec: ModelSpec, horizons: Sequence[int]) -> list[str]:
    """The dataset columns ``outcomes`` reads (the oracle's where the dataset has it): what
    a stored evaluation needs to load instead of the whole dataset."""
    columns = ["date", "ticker", "ret_1d"]
    for h in horizons:
        columns += [*spec.target.columns(h), f"fwd_return_{h}d", oracle_column(spec, h)]
    return columns


def outcomes(spec: ModelSpec, dataset: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """What predictions are scored against, per (date, ticker) of ``keys``: the targets, the
    oracle (synthetic data), the forward return per horizon, and the next day's return that
    the strategy earns. ``dataset`` is the dataset frame or outcomes already drawn from it."""
    horizons = horizons_in(keys)
    oracles = {oracle_column(spec, h) for h in horizons}  # generated data only
    columns = [
        c
        for c in outcome_columns(spec, horizons)
        if c != "ret_1d" and (c in dataset.columns or c not in oracles)
    ]
    if "next_return" not in dataset.columns:  # sorted on the columns read, not the dataset
        dataset = (
            dataset[[*columns, "ret_1d"]]
            .sort_values(["ticker", "date"])
            .assign(next_return=lambda f: f.groupby("ticker")["ret_1d"].shift(-1))
        )
    rows = keys[["date", "ticker"]].merge(
        dataset[[*columns, "next_return"]], on=["date", "ticker"], how="left"
    )
    return rows.fillna({"next_return": 0.0})
