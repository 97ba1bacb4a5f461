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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from core.market.features import CONTEXT_FEATURES, FEATURES, MASK_COLUMNS
from core.market.loaders import Loaders, on_the_day_s_scale
from core.market.models import ModelSpec
from core.market.relevance import ContextFactor, trailing_relevance

BASELINE_NAMES = ("majority", "momentum", "linear", "boosting", "persistence", "oracle")


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


def _rows(dataset: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    return meta[["date", "ticker"]].merge(dataset, on=["date", "ticker"], how="left")


def baseline_predictions(
    spec: ModelSpec,
    dataset: pd.DataFrame,
    loaders: Loaders,
    *,
    seed: int = 0,
    names: Sequence[str] = BASELINE_NAMES,
) -> dict[str, pd.DataFrame]:
    """Each baseline's predictions on the test rows, fit on the training rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    raw = dataset
    if loaders.cross_sectional:  # the features on the day's scale, as the model read them
        dataset = on_the_day_s_scale(dataset)
    train, test = _rows(dataset, loaders.train.meta), _rows(dataset, loaders.test.meta)
    columns = [*FEATURES, *MASK_COLUMNS]
    mean = train[columns].mean()
    spread = train[columns].std().replace(0, 1).fillna(1)

    def features(frame: pd.DataFrame) -> np.ndarray:
        return ((frame[columns] - mean) / spread).fillna(0.0).to_numpy()

    x_train, x_test = features(train), features(test)
    if "persistence" in names and spec.targets == "relevance":
        trailing = _trailing(raw, test, loaders)
    results: dict[str, pd.DataFrame] = {}
    for name in names:
        frame = test[["date", "ticker"]].copy()
        for h in loaders.horizons:
            score_column, class_column = spec.target.columns(h)
            y_score = train[score_column].to_numpy()
            y_class = train[class_column].to_numpy().astype(int)
            if name == "majority":
                majority = np.bincount(y_class).argmax()
                frame[f"score_{h}d"] = np.full(len(test), y_score.mean())
                frame[f"class_{h}d"] = majority
            elif name == "momentum":
                sign = np.sign(test["ret_21d"].to_numpy())
                frame[f"score_{h}d"] = sign
                frame[f"class_{h}d"] = _class_from_sign(sign, len(spec.target.class_names))
            elif name == "linear":
                frame[f"score_{h}d"] = np.clip(
                    Ridge(alpha=10.0).fit(x_train, y_score).predict(x_test), -1, 1
                )
                classifier = LogisticRegression(max_iter=500, C=0.1)
                frame[f"class_{h}d"] = classifier.fit(x_train, y_class).predict(x_test)
            elif name == "boosting":
                # One OpenMP thread: with OMP_WAIT_POLICY=PASSIVE (core/__init__.py) every one
                # of the thousands of small parallel regions in a fit wakes sleeping threads,
                # and two threads took twice as long as one (3 fits of 20k x 87 here: 6.1 s
                # vs 2.9 s); beside other processes one thread is the fair share anyway.
                with threadpool_limits(limits=1, user_api="openmp"):
                    regressor = HistGradientBoostingRegressor(max_iter=200, random_state=seed)
                    frame[f"score_{h}d"] = np.clip(
                        regressor.fit(x_train, y_score).predict(x_test), -1, 1
                    )
                    classifier = HistGradientBoostingClassifier(max_iter=200, random_state=seed)
                    frame[f"class_{h}d"] = classifier.fit(x_train, y_class).predict(x_test)
            elif name == "persistence":
                if spec.targets != "relevance":
                    break
                score = np.nan_to_num(trailing[f"trailing_relevance_{h}d"].to_numpy())
                frame[f"score_{h}d"] = score
                frame[f"class_{h}d"] = oracle_classes(spec, score)
            elif name == "oracle":
                oracle = oracle_column(spec, h)
                if oracle not in test.columns:
                    break
                frame[f"score_{h}d"] = test[oracle].to_numpy()
                frame[f"class_{h}d"] = oracle_classes(spec, test[oracle].to_numpy())
            else:
                raise ValueError(f"unknown baseline {name!r}")
        else:
            results[name] = frame
    return results


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


def _class_from_sign(sign: np.ndarray, classes: int) -> np.ndarray:
    """+1 -> the last class (up / positive), -1 -> the first, 0 -> the middle (or up)."""
    if classes == 2:
        return (sign > 0).astype(int)
    return np.select([sign < 0, sign > 0], [0, classes - 1], classes // 2)


def oracle_classes(spec: ModelSpec, oracle: np.ndarray, threshold: float = 0.25) -> np.ndarray:
    if spec.targets == "relevance":
        return np.select([oracle < -threshold, oracle > threshold], [0, 2], 1)
    return _class_from_sign(np.sign(oracle), len(spec.target.class_names))


def oracle_column(spec: ModelSpec, h: int) -> str:
    return f"oracle_{'relevance' if spec.targets == 'relevance' else 'trend'}_{h}d"


def outcomes(spec: ModelSpec, dataset: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """What predictions are scored against, per (date, ticker) of ``keys``: the targets, the
    oracle (synthetic data), the forward return per horizon, and the next day's return that
    the strategy earns. ``dataset`` is the dataset frame or outcomes already drawn from it."""
    if "next_return" not in dataset.columns:
        dataset = dataset.sort_values(["ticker", "date"]).assign(
            next_return=lambda f: f.groupby("ticker")["ret_1d"].shift(-1)
        )
    columns = ["date", "ticker"]
    for h in horizons_in(keys):
        columns += [*spec.target.columns(h), f"fwd_return_{h}d"]
        if oracle_column(spec, h) in dataset.columns:
            columns.append(oracle_column(spec, h))
    rows = keys[["date", "ticker"]].merge(
        dataset[[*columns, "next_return"]], on=["date", "ticker"], how="left"
    )
    return rows.fillna({"next_return": 0.0})
