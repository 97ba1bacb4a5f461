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

from core.batches import TensorBatches, Windows
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
    Non-finite values (inf) are kept so the trainer can name the feature and stop. In place."""
    finite = np.isfinite(values)
    values[np.isnan(values)] = 0.0
    if clip:
        np.clip(values, -CLIP_Z, CLIP_Z, out=values, where=finite)
    return values


def _split(dates: pd.Series, config: DataConfig) -> TimeSplit:
    return time_split(
        dates,
        train_fraction=config.train_fraction,
        val_fraction=config.val_fraction,
        purge_days=config.effective_purge_days,
    )


def _labelled(frame: pd.DataFrame, targets: list[str]) -> np.ndarray:
    """Which rows of ``frame`` carry every target (a boolean array)."""
    missing = [c for c in targets if c not in frame.columns]
    if missing:
        raise ValueError(f"the dataset has no column(s) {', '.join(missing)}")
    kept = frame[targets].notna().all(axis=1).to_numpy()
    if not kept.any():
        raise ValueError(
            f"no row has every target ({', '.join(targets)}); relevance needs context data"
        )
    return kept


def stock_values(frame: pd.DataFrame, columns: Sequence[str], *, cross: bool) -> np.ndarray:
    """The stock features of ``frame``'s rows as float32, on the day's scale when ``cross``."""
    if cross:
        return robust_zscores(frame, columns).to_numpy()
    return frame[list(columns)].to_numpy(dtype=np.float32)


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
    kept = _labelled(df, columns)
    frame = df.loc[kept, ["date", "ticker", *MASK_COLUMNS, *columns]].reset_index(drop=True)
    split = _split(frame["date"], config)
    n_context = len(CONTEXT_FEATURES)
    # (rows, context + stock) in float32, one copy: a universe's features fit in memory once.
    values = np.empty((len(frame), n_context + len(STOCK_FEATURES)), dtype=np.float32)
    values[:, :n_context] = df.loc[kept, CONTEXT_FEATURES].to_numpy(dtype=np.float32)
    values[:, n_context:] = stock_values(df, STOCK_FEATURES, cross=cross)[kept]
    features = [*CONTEXT_FEATURES, *STOCK_FEATURES]
    scaler = Standardizer.fit_values(values[split.train], features) if config.normalize else None
    if scaler:
        scaler.apply(values)
    values = _finish(values, clip=config.normalize)
    masks = frame[MASK_COLUMNS].to_numpy(dtype=np.float32)

    def batches(mask: np.ndarray, shuffle: bool) -> TensorBatches:
        inputs = {
            "context": torch.from_numpy(values[mask, :n_context]),
            "context_mask": torch.from_numpy(masks[mask]),
            "stock": torch.from_numpy(values[mask, n_context:]),
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
    scored = robust_zscores(frame, STOCK_FEATURES).astype(float)
    return frame.assign(**{column: scored[column] for column in STOCK_FEATURES})


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
    return frame[_last_of_week(frame)].reset_index(drop=True)


def _last_of_week(frame: pd.DataFrame) -> np.ndarray:
    week = frame["date"].dt.to_period("W-FRI")
    keys = pd.DataFrame({"ticker": frame["ticker"].to_numpy(), "week": week.to_numpy()})
    last = keys.assign(date=frame["date"].to_numpy()).groupby(["ticker", "week"], sort=False)
    return frame["date"].to_numpy() == last["date"].transform("max").to_numpy()


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
    features = list(features)
    order = data[["ticker", "date"]].sort_values(["ticker", "date"], kind="stable").index
    position = data.index.get_indexer(order)
    frame = data[["date", "ticker", "rv_21", *columns]].iloc[position].reset_index(drop=True)
    values = stock_values(data, features, cross=cross)[position]  # cross: on all daily rows
    if step == "weekly":
        weekly = _last_of_week(frame)
        frame, values = frame[weekly].reset_index(drop=True), values[weekly]
    split = _split(frame["date"], config)
    scaler = Standardizer.fit_values(values[split.train], features) if config.normalize else None
    if scaler:
        scaler.apply(values)
    rows = torch.from_numpy(_finish(values, clip=config.normalize))

    # A window ends at each of a ticker's rows from its sequence_length-th on.
    tickers = frame["ticker"].to_numpy()
    starts = np.flatnonzero(np.r_[True, tickers[1:] != tickers[:-1]])
    stops = np.r_[starts[1:], len(frame)]
    ends = np.concatenate(
        [np.arange(a + sequence_length - 1, b) for a, b in zip(starts, stops, strict=True)]
        or [np.empty(0, dtype=np.int64)]
    )
    if not len(ends):
        raise SplitError(f"no ticker has {sequence_length} {step} steps for one window")
    end_rows = frame.loc[ends].reset_index(drop=True)
    labelled = end_rows[columns].notna().all(axis=1).to_numpy()
    segment = {"train": split.train, "val": split.val, "test": split.test}

    def batches(name: str, shuffle: bool) -> TensorBatches:
        keep = segment[name][ends] & labelled
        inputs = {
            "sequence": Windows(rows, torch.from_numpy(ends[keep]), sequence_length),
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
