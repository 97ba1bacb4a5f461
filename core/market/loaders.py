"""Train / validation / test batches for the models, built from a dataset frame.

Data that fits in memory is turned into tensors once; a ``TensorBatches`` then slices
minibatches from them by index (no per-sample Python ``__getitem__``). Each batch is a dict of
tensors, so every model reads the keys it needs:

- tabular (dual tower, compact baselines): ``context`` (B, 25), ``context_mask`` (B, 3),
  ``stock`` (B, 62) and the targets;
- sequences (LSTM): ``sequence`` (B, L, F), ``volatility`` (B,) (the last step's unscaled
  ``rv_21``) and the targets of the window's last step.

Targets per horizon h: ``relevance_hd`` and ``relevance_class_hd`` (kind "relevance"),
``trend_hd``, ``up_hd`` and ``class_hd`` (kind "trend"). Rows without every target are
dropped (their forward window is incomplete). Splits are by date with a purge of at least the
longest horizon, and the standardiser is fit on the training rows only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from core.batches import TensorBatches
from core.market.config import DataConfig
from core.market.cross_section import is_cross_sectional, robust_zscores
from core.market.features import CONTEXT_FEATURES, MASK_COLUMNS, STOCK_FEATURES
from core.market.splits import SplitError, Standardizer, TimeSplit, time_split

TARGET_KINDS = {
    "relevance": ("relevance", "relevance_class"),
    "trend": ("trend", "up", "class"),
}
INTEGER_TARGETS = ("relevance_class", "up", "class")


def target_columns(kind: str, horizons: Sequence[int]) -> list[str]:
    if kind not in TARGET_KINDS:
        raise ValueError(f"target kind {kind!r} is not one of {', '.join(TARGET_KINDS)}")
    return [f"{name}_{h}d" for h in horizons for name in TARGET_KINDS[kind]]


MIN_LABELLED_ROWS = 500
"""Fewest rows with every target a model trains on: below it the 70/15/15 split leaves too
few dates per segment to train, stop early and test on."""


@dataclass(frozen=True)
class TargetCoverage:
    """How many rows of a dataset carry every target of one kind, and why the rest do not."""

    kind: str
    rows: int
    labelled: int
    reasons: list[str]

    @property
    def enough(self) -> bool:
        return self.labelled >= MIN_LABELLED_ROWS

    def sentence(self) -> str:
        text = f"{self.labelled:,} of {self.rows:,} rows have every {self.kind} target"
        return text + (f" ({'; '.join(self.reasons)})" if self.reasons else "")


def target_coverage(frame: pd.DataFrame, kind: str, horizons: Sequence[int]) -> TargetCoverage:
    """Rows with every ``kind`` target at every horizon, and the reasons the others lack one:
    the end of each ticker's history has no complete forward window, and relevance needs
    context observed over the window."""
    labelled = frame[target_columns(kind, horizons)].notna().all(axis=1)
    has_trend = frame[target_columns("trend", horizons)].notna().all(axis=1)
    reasons = []
    if (~has_trend).any():
        reasons.append(
            f"the last {max(horizons)} days of each ticker have no complete forward window: "
            f"{int((~has_trend).sum()):,} rows"
        )
    if kind == "relevance" and (has_trend & ~labelled).any():
        reasons.append(
            f"relevance needs context: {int((has_trend & ~labelled).sum()):,} rows have none"
        )
    return TargetCoverage(kind, len(frame), int(labelled.sum()), reasons)


def _target_tensor(name: str, values: np.ndarray) -> torch.Tensor:
    if name.rsplit("_", 1)[0] in INTEGER_TARGETS:
        return torch.tensor(values, dtype=torch.long)
    return torch.tensor(values, dtype=torch.float32)


@dataclass(frozen=True)
class Loaders:
    """The three segments' batches; iterating yields train, validation and test."""

    train: TensorBatches
    val: TensorBatches
    test: TensorBatches
    horizons: tuple[int, ...]
    """The dataset's label horizons, whose targets the batches carry."""
    cross_sectional: bool = False
    """Stock features were robust-z-scored across each date's tickers
    (``core.market.cross_section``): baselines and predictions read them so too, and
    training stops early on the validation rank IC."""

    def __iter__(self) -> Iterator[TensorBatches]:
        return iter((self.train, self.val, self.test))


def _resolve_config(
    config: DataConfig | None,
    *,
    normalize: bool,
    time_aware_split: bool,
    train_fraction: float | None,
    val_fraction: float | None,
    test_fraction: float | None,
) -> DataConfig:
    """The seeds' keyword arguments, applied over a DataConfig (which validates them)."""
    base = (config or DataConfig()).to_dict()
    overrides = {"normalize": normalize, "time_aware_split": time_aware_split}
    if val_fraction is not None or test_fraction is not None:
        val = base["val_fraction"] if val_fraction is None else val_fraction
        test = base["test_fraction"] if test_fraction is None else test_fraction
        overrides.update(val_fraction=val, test_fraction=test, train_fraction=1 - val - test)
    if train_fraction is not None:
        overrides["train_fraction"] = train_fraction
    return DataConfig.from_dict({**base, **overrides})


CLIP_Z = 5.0


def _finish(values: np.ndarray, *, clip: bool) -> np.ndarray:
    """Unknown values become 0 (the training mean; the mask says they were unknown), and
    standardised values are clipped to +/- 5 so a few extreme rows cannot dominate a step.
    Non-finite values (inf) are kept so the trainer can name the feature and stop."""
    finite = np.isfinite(values)
    values = np.where(np.isnan(values), 0.0, values)
    if clip:
        values = np.where(finite, np.clip(values, -CLIP_Z, CLIP_Z), values)
    return values


def _split(dates: pd.Series, config: DataConfig) -> TimeSplit:
    return time_split(
        dates,
        train_fraction=config.train_fraction,
        val_fraction=config.val_fraction,
        purge_days=config.effective_purge_days,
    )


def _labelled(frame: pd.DataFrame, targets: list[str]) -> pd.DataFrame:
    missing = [c for c in targets if c not in frame.columns]
    if missing:
        raise ValueError(f"the dataset has no column(s) {', '.join(missing)}")
    kept = frame.dropna(subset=targets).reset_index(drop=True)
    if kept.empty:
        raise ValueError(
            f"no row has every target ({', '.join(targets)}); relevance needs context data"
        )
    return kept


def create_data_loaders(
    df: pd.DataFrame,
    batch_size: int = 32,
    normalize: bool = True,
    time_aware_split: bool = True,
    train_fraction: float | None = None,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    *,
    targets: str = "relevance",
    config: DataConfig | None = None,
    seed: int = 42,
) -> Loaders:
    """Tabular batches (context, context_mask, stock, targets) for the dual-tower models."""
    config = _resolve_config(
        config,
        normalize=normalize,
        time_aware_split=time_aware_split,
        train_fraction=train_fraction,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
    )
    columns = target_columns(targets, config.horizons)
    cross = is_cross_sectional(df, config.cross_sectional)
    frame = _labelled(on_the_day_s_scale(df) if cross else df, columns)
    split = _split(frame["date"], config)
    features = [*CONTEXT_FEATURES, *STOCK_FEATURES]
    train_rows = frame[split.train]
    scaler = Standardizer.fit(train_rows, features) if config.normalize else None
    values = scaler.transform(frame) if scaler else frame[features].to_numpy(dtype=float)
    values = _finish(values, clip=config.normalize)
    n_context = len(CONTEXT_FEATURES)

    def batches(mask: np.ndarray, shuffle: bool) -> TensorBatches:
        inputs = {
            "context": torch.as_tensor(values[mask, :n_context], dtype=torch.float32),
            "context_mask": torch.tensor(
                frame.loc[mask, MASK_COLUMNS].to_numpy(), dtype=torch.float32
            ),
            "stock": torch.as_tensor(values[mask, n_context:], dtype=torch.float32),
        }
        return _batches(inputs, frame.loc[mask], columns, batch_size, shuffle, seed, scaler)

    return Loaders(
        batches(split.train, True),
        batches(split.val, False),
        batches(split.test, False),
        tuple(config.horizons),
        cross,
    )


def on_the_day_s_scale(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its stock features robust-z-scored across each date's tickers (the
    date's rows only); context features, one value a date for every ticker, unchanged."""
    return frame.assign(**robust_zscores(frame, STOCK_FEATURES))


def _batches(
    inputs: dict[str, torch.Tensor],
    rows: pd.DataFrame,
    targets: list[str],
    batch_size: int,
    shuffle: bool,
    seed: int,
    scaler: Standardizer | None,
) -> TensorBatches:
    """Input tensors plus the ``targets`` columns of ``rows`` (same order) as batches."""
    tensors = dict(inputs)
    for name in targets:
        tensors[name] = _target_tensor(name, rows[name].to_numpy())
    return TensorBatches(
        tensors,
        meta=rows[["date", "ticker"]],
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        standardizer=scaler,
    )


def weekly_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last trading row of each calendar week (ending Friday) of each ticker."""
    week = frame["date"].dt.to_period("W-FRI")
    last = (
        frame.assign(_week=week).groupby(["ticker", "_week"], sort=False)["date"].transform("max")
    )
    return frame[frame["date"] == last].reset_index(drop=True)


def create_lstm_data_loaders(
    data: pd.DataFrame,
    sequence_length: int = 12,
    batch_size: int = 32,
    normalize: bool = True,
    time_aware_split: bool = True,
    train_fraction: float | None = None,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    *,
    step: str = "weekly",
    features: Sequence[str] = tuple(STOCK_FEATURES),
    config: DataConfig | None = None,
    seed: int = 42,
) -> Loaders:
    """Windows of ``sequence_length`` steps per ticker for the LSTM, targets at the last step.

    ``step`` is "weekly" (seed 003: the last trading day of each week) or "daily". A window
    belongs to the segment of its last date; the standardiser is fit on training rows.
    """
    if step not in ("weekly", "daily"):
        raise ValueError(f"step {step!r} is not 'weekly' or 'daily'")
    config = _resolve_config(
        config,
        normalize=normalize,
        time_aware_split=time_aware_split,
        train_fraction=train_fraction,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
    )
    columns = target_columns("trend", config.horizons)
    cross = is_cross_sectional(data, config.cross_sectional)
    frame = data.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)
    if cross:
        frame = on_the_day_s_scale(frame)
    if step == "weekly":
        frame = weekly_rows(frame)
    features = list(features)
    split = _split(frame["date"], config)
    scaler = Standardizer.fit(frame[split.train], features) if config.normalize else None
    values = scaler.transform(frame) if scaler else frame[features].to_numpy(dtype=float)
    values = _finish(values, clip=config.normalize).astype(np.float32)

    windows, ends = [], []
    for _, rows in frame.groupby("ticker", sort=True):
        index = rows.index.to_numpy()
        if len(index) < sequence_length:
            continue
        block = values[index]  # (T, F)
        # (T - L + 1, F, L) -> (T - L + 1, L, F)
        windows.append(
            np.lib.stride_tricks.sliding_window_view(block, sequence_length, axis=0).transpose(
                0, 2, 1
            )
        )
        ends.append(index[sequence_length - 1 :])
    if not windows:
        raise SplitError(f"no ticker has {sequence_length} {step} steps for one window")
    sequences = np.concatenate(windows)
    end_rows = frame.loc[np.concatenate(ends)].reset_index(drop=True)
    labelled = end_rows[columns].notna().all(axis=1).to_numpy()
    segment = {"train": split.train, "val": split.val, "test": split.test}
    end_index = np.concatenate(ends)

    def batches(name: str, shuffle: bool) -> TensorBatches:
        keep = segment[name][end_index] & labelled
        inputs = {
            "sequence": torch.from_numpy(np.ascontiguousarray(sequences[keep])),
            # Unscaled 21-day realised volatility at the last step, for volatility-aware losses.
            "volatility": torch.tensor(end_rows.loc[keep, "rv_21"].to_numpy(), dtype=torch.float32),
        }
        return _batches(inputs, end_rows.loc[keep], columns, batch_size, shuffle, seed, scaler)

    return Loaders(
        batches("train", True),
        batches("val", False),
        batches("test", False),
        tuple(config.horizons),
        cross,
    )
