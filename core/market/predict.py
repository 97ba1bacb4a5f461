"""Predictions from a checkpoint: the one path the CLI, the Predict page and the API use.

``Predictor.from_checkpoint`` rebuilds the model and its training-segment standardiser.
``predict_frame`` takes rows with the dataset's feature columns (missing context columns mean
the group is unknown and masked) and returns, per horizon, the score, the predicted class and
the class probabilities. Sequence models read each ticker's last ``sequence_length`` steps.
A model trained cross-sectionally (``core.market.cross_section``) reads stock features on the
day's scale: each row is robust-z-scored against the other tickers of its date, the rows
given or, for a what-if row, the date's rows of its dataset (``cross_section``).
"""

from __future__ import annotations

import csv
import datetime
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.checkpoints import Checkpoint, load_checkpoint
from core.market.features import CONTEXT_FEATURE_GROUPS, CONTEXT_FEATURES, STOCK_FEATURES
from core.market.loaders import on_the_day_s_scale, weekly_rows
from core.market.models import ModelSpec, model_spec, rebuild_model
from core.market.splits import Standardizer

TABULAR_COLUMNS = [*CONTEXT_FEATURES, *STOCK_FEATURES]
GROUP_INDICES = [
    [TABULAR_COLUMNS.index(name) for name in names] for names in CONTEXT_FEATURE_GROUPS.values()
]


class PredictionInputError(ValueError):
    """Input rows that the model cannot read; the message names the column or row."""


def _shown(value: object) -> str:
    """A rejected cell in a message, briefly: a cell may hold 100 kB of text."""
    if isinstance(value, str):
        return f"text {value[:20]!r}" + ("..." if len(value) > 20 else "")
    if isinstance(value, bool | np.bool_):
        return f"a boolean ({str(bool(value)).lower()})"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, int | float | np.number):
        return "a number"
    return f"a value of type {type(value).__name__}"


def _is_empty(cell: object) -> bool:
    return (
        cell is None
        or cell is pd.NA
        or cell is pd.NaT
        or (isinstance(cell, float) and np.isnan(cell))
    )


def _cell_number(cell: object) -> float | None:
    """The cell as a float (NaN when empty), or None when it is not a number: text and
    booleans are refused rather than read as unknown or as 1."""
    if _is_empty(cell):
        return np.nan
    if isinstance(cell, bool | np.bool_) or not isinstance(cell, int | float | np.number):
        return None
    try:
        return float(cell)
    except OverflowError:  # an integer beyond float range: refused below as infinite
        return np.inf if cell > 0 else -np.inf


def _numeric_features(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with the feature ``columns`` it has as floats; the first cell that is not a
    number or empty is refused by row and column."""
    present = [c for c in columns if c in frame.columns]
    dtypes = frame.dtypes
    numeric = [
        c
        for c in present
        if pd.api.types.is_numeric_dtype(dtypes[c]) and not pd.api.types.is_bool_dtype(dtypes[c])
    ]
    # The numeric columns in one block, not one conversion per feature (87 of them).
    converted = pd.DataFrame(
        frame[numeric].to_numpy(dtype=float), columns=numeric, index=frame.index
    )
    numeric_set = set(numeric)
    for column in [c for c in present if c not in numeric_set]:
        numbers = np.empty(len(frame))
        for position, cell in enumerate(frame[column].tolist()):
            number = _cell_number(cell)
            if number is None:
                raise PredictionInputError(
                    f"row {position + 1}, column {column!r} must be a number or empty, "
                    f"not {_shown(cell)}"
                )
            numbers[position] = number
        converted[column] = numbers
    return pd.concat([frame.drop(columns=present), converted], axis=1)


LABEL_FORMS = {"date": "a date as text (YYYY-MM-DD)", "ticker": "text"}
LABEL_TYPES = {"date": (str, datetime.date), "ticker": (str,)}


def _checked_labels(frame: pd.DataFrame, *, required: bool) -> None:
    """date and ticker name a row: text, or typed as a dataset or a CSV of exchange codes reads
    them. A sequence model groups and orders rows by them, so there every row needs both; a
    tabular model only echoes them back, so there they may be empty."""
    for column, form in LABEL_FORMS.items():
        if column not in frame.columns:
            if required:
                raise PredictionInputError(f"sequence models need a {column!r} column")
            continue
        series = frame[column]
        typed = (
            pd.api.types.is_datetime64_any_dtype(series)
            if column == "date"
            else pd.api.types.is_integer_dtype(series)
        )
        for position, cell in enumerate(series.tolist()):
            empty = _is_empty(cell) or cell == ""
            readable = typed or isinstance(cell, LABEL_TYPES[column])
            if (not empty and readable) or (empty and not required):
                continue
            problem = "is empty" if empty else f"holds {_shown(cell)}"
            raise PredictionInputError(
                f"row {position + 1}, column {column!r} {problem}; it takes {form}"
            )


def _parsed_dates(dates: pd.Series) -> pd.Series:
    """Dates that ``_checked_labels`` let through, as timestamps; text that names no date
    (9999-99-99) is refused by row."""
    if pd.api.types.is_datetime64_any_dtype(dates):
        return dates
    stamps = []
    for position, cell in enumerate(dates.tolist()):
        try:
            stamp = pd.Timestamp(cell)
        except (ValueError, OverflowError):
            stamp = pd.NaT
        if stamp is pd.NaT:
            raise PredictionInputError(
                f"row {position + 1}, column 'date' holds {_shown(cell)}, not a date (YYYY-MM-DD)"
            )
        stamps.append(stamp.tz_localize(None) if stamp.tzinfo else stamp)  # the local date
    return pd.Series(pd.to_datetime(stamps), index=dates.index)


@dataclass
class Predictor:
    spec: ModelSpec
    model: nn.Module
    standardizer: Standardizer | None
    meta: dict

    @classmethod
    def from_checkpoint(cls, path: Path | Checkpoint) -> Predictor:
        checkpoint = path if isinstance(path, Checkpoint) else load_checkpoint(Path(path))
        meta = checkpoint.meta
        scaler = meta.get("standardizer")
        model = rebuild_model(checkpoint)
        return cls(
            spec=model_spec(meta["model"], model.config),
            model=model,
            standardizer=Standardizer.from_dict(scaler) if scaler else None,
            meta=meta,
        )

    @property
    def horizons(self) -> list[int]:
        """The horizons the model predicts (its dataset's)."""
        return list(self.model.config.horizons)

    @property
    def sequence_length(self) -> int:
        return int(self.meta.get("training", {}).get("sequence", {}).get("sequence_length", 12))

    def _values(self, frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
        """The raw (unscaled) feature matrix of a frame ``_numeric_features`` checked; absent
        context columns are NaN (unknown)."""
        required = [c for c in columns if c not in frame.columns and c not in CONTEXT_FEATURES]
        if required:
            raise PredictionInputError(f"input lacks the column(s) {', '.join(required)}")
        present = [i for i, c in enumerate(columns) if c in frame.columns]
        values = np.full((len(frame), len(columns)), np.nan)
        values[:, present] = frame[[columns[i] for i in present]].to_numpy(dtype=float)
        return values

    def _scaled(
        self, values: np.ndarray, columns: list[str], rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Standardised values; ``rows`` are the input's row numbers of ``values`` (a sequence
        window's rows are not the first ones)."""
        rows = np.arange(1, len(values) + 1) if rows is None else rows
        infinite = np.argwhere(np.isinf(values))
        if len(infinite):
            row, column = infinite[0]
            raise PredictionInputError(f"row {rows[row]}, column {columns[column]!r} is infinite")
        stock_columns = [i for i, c in enumerate(columns) if c in STOCK_FEATURES]
        empty = np.argwhere(np.isnan(values[:, stock_columns]))
        if len(empty):
            row, column = empty[0]
            name = columns[stock_columns[column]]
            raise PredictionInputError(f"row {rows[row]}, column {name!r} is empty")
        if self.standardizer is not None:
            values = (values - self.standardizer.mean) / self.standardizer.std
        return np.nan_to_num(np.clip(values, -5, 5), nan=0.0)

    @property
    def cross_sectional(self) -> bool:
        """Trained on stock features put on the day's scale across its tickers."""
        return bool(self.meta.get("cross_sectional"))

    def _on_the_day_s_scale(
        self, frame: pd.DataFrame, cross_section: pd.DataFrame | None
    ) -> pd.DataFrame:
        """``frame`` (numeric features checked) with its stock features robust-z-scored against
        each date's tickers: the rows of ``frame`` and those of ``cross_section`` on the same
        dates (a row of ``frame`` replaces the one of its ticker there). Unchanged for a model
        not trained cross-sectionally."""
        if not self.cross_sectional:
            return frame
        if "date" not in frame.columns or "ticker" not in frame.columns:
            raise PredictionInputError(
                "this model ranks each row against the other tickers of its date: give date "
                "and ticker columns"
            )
        own = frame.assign(date=_parsed_dates(frame["date"]), _own=np.arange(len(frame)))
        parts = [own]
        if cross_section is not None and not cross_section.empty:
            others = cross_section.assign(date=pd.to_datetime(cross_section["date"]))
            keys = pd.MultiIndex.from_frame(own[["date", "ticker"]])
            others = others[
                others["date"].isin(own["date"])
                & ~pd.MultiIndex.from_frame(others[["date", "ticker"]]).isin(keys)
            ]
            parts.append(others[[c for c in own.columns if c in others.columns]])
        union = on_the_day_s_scale(pd.concat(parts, ignore_index=True))
        scaled = union[union["_own"].notna()].sort_values("_own")
        return scaled.drop(columns="_own").set_index(frame.index)

    @torch.inference_mode()
    def predict_frame(
        self, frame: pd.DataFrame, cross_section: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Scores of ``frame``'s rows; ``cross_section``: rows of other tickers on the same
        dates, for a model trained cross-sectionally (see the module docstring)."""
        self.model.eval()
        _checked_labels(frame, required=self.spec.sequence or self.cross_sectional)
        if self.spec.sequence:
            return self._predict_sequences(frame, cross_section)
        checked = _numeric_features(frame, TABULAR_COLUMNS)
        checked = self._on_the_day_s_scale(checked, cross_section)
        raw = self._values(checked, TABULAR_COLUMNS)
        outputs = self.predict_arrays(raw)
        keep = [c for c in ("date", "ticker") if c in frame.columns]
        return self._table(frame[keep].reset_index(drop=True), outputs)

    @torch.inference_mode()
    def predict_features(self, features: dict[str, float]) -> dict[str, torch.Tensor]:
        """One row given as {feature: value} (the what-if form); absent context = unknown."""
        raw = np.array([[features.get(name, np.nan) for name in TABULAR_COLUMNS]], dtype=float)
        return self.predict_arrays(raw)

    @torch.inference_mode()
    def predict_arrays(self, raw: np.ndarray) -> dict[str, torch.Tensor]:
        """Model outputs for raw feature rows in ``TABULAR_COLUMNS`` order (tabular models)."""
        if self.spec.sequence:
            raise PredictionInputError("sequence models read windows; use predict_frame")
        masks = np.column_stack(
            [~np.isnan(raw[:, indices]).any(axis=1) for indices in GROUP_INDICES]
        ).astype(np.float32)
        values = torch.from_numpy(self._scaled(raw, TABULAR_COLUMNS).astype(np.float32))
        inputs = {
            "context": values[:, : len(CONTEXT_FEATURES)],
            "stock": values[:, len(CONTEXT_FEATURES) :],
            "context_mask": torch.from_numpy(masks),
        }
        return self.model(*(inputs[k] for k in self.spec.inputs))

    def _predict_sequences(
        self, frame: pd.DataFrame, cross_section: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        features = self.standardizer.columns if self.standardizer else STOCK_FEATURES
        frame = _numeric_features(frame, features)  # checked in the caller's row order
        frame = self._on_the_day_s_scale(frame, cross_section)
        frame = frame.assign(date=_parsed_dates(frame["date"]), _row=np.arange(1, len(frame) + 1))
        frame = frame.sort_values(["ticker", "date"])
        if self.meta.get("training", {}).get("sequence", {}).get("step", "weekly") == "weekly":
            frame = weekly_rows(frame.reset_index(drop=True))
        length = self.sequence_length
        windows, rows = [], []
        for ticker, group in frame.groupby("ticker", sort=True):
            if len(group) < length:
                raise PredictionInputError(
                    f"ticker {ticker} has {len(group)} steps; the model reads {length}"
                )
            window = group.tail(length)
            values = self._values(window, features)
            windows.append(self._scaled(values, features, rows=window["_row"].to_numpy()))
            rows.append({"date": group["date"].iloc[-1], "ticker": ticker})
        outputs = self.model(torch.tensor(np.stack(windows), dtype=torch.float32))
        return self._table(pd.DataFrame(rows), outputs)

    def _table(self, keys: pd.DataFrame, outputs: dict[str, torch.Tensor]) -> pd.DataFrame:
        names = self.spec.target.class_names
        columns: dict[str, object] = {k: keys[k].to_numpy() for k in keys.columns}
        for h in self.horizons:
            score, probs = self.spec.readout(outputs, h)
            probabilities = probs.numpy()
            columns[f"score_{h}d"] = score.numpy()
            columns[f"class_{h}d"] = np.asarray(names)[probabilities.argmax(-1)]
            for i, name in enumerate(names):
                columns[f"p_{name}_{h}d"] = probabilities[:, i]
        if "attention_weights" in outputs:
            weights = outputs["attention_weights"].numpy()
            for step in range(weights.shape[1]):
                columns[f"attention_{step}"] = weights[:, step]
        return pd.DataFrame(columns)


def read_feature_csv(
    source: Path | bytes, *, name: str, max_bytes: int = 50 * 2**20
) -> pd.DataFrame:
    """Rows to score from a CSV (a path or uploaded bytes); problems name the file."""
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size > max_bytes:
        raise PredictionInputError(
            f"{name}: {size / 2**20:.1f} MB is over the {max_bytes / 2**20:.0f} MB limit"
        )
    repeated = _repeated_names(source)
    if repeated:
        raise PredictionInputError(
            f"{name}: the header names column {repeated[0]!r} more than once; keep one, or "
            "rename the others"
        )
    try:
        frame = pd.read_csv(source if isinstance(source, Path) else io.BytesIO(source))
    except UnicodeDecodeError as error:
        raise PredictionInputError(f"{name}: not UTF-8 text ({error.reason})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise PredictionInputError(f"{name}: not a readable CSV ({error})") from None
    if frame.empty:
        raise PredictionInputError(f"{name}: no rows to score")
    # One cell that is not a number makes pandas read its whole column as text; numbers stay
    # numbers, so that the check names the row of that cell.
    for column in frame.columns.intersection(TABULAR_COLUMNS):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            numbers = pd.to_numeric(frame[column], errors="coerce")
            frame[column] = frame[column].astype(object).where(numbers.isna(), numbers)
    return frame


def _repeated_names(source: Path | bytes) -> list[str]:
    """Column names the CSV's header line repeats (pandas would read the second ``rsi_14`` as
    ``rsi_14.1`` and score the first one without a word)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            head = handle.read(1 << 20)
    else:
        head = source[: 1 << 20]
    line = next((line for line in head.decode("utf-8-sig", "replace").splitlines() if line), "")
    names = [name.strip() for name in next(csv.reader([line]), [])]
    return sorted({name for name in names if names.count(name) > 1})


def predict_csv(
    predictor: Predictor, source: Path | bytes, *, name: str, max_bytes: int = 50 * 2**20
) -> pd.DataFrame:
    """Score every row of a CSV; a PredictionInputError names the file, row and column."""
    frame = read_feature_csv(source, name=name, max_bytes=max_bytes)
    try:
        return predictor.predict_frame(frame)
    except PredictionInputError as error:
        raise PredictionInputError(f"{name}: {error}") from None


def feature_ranges(frame: pd.DataFrame, columns: list[str]) -> dict[str, tuple[float, float]]:
    """Slider bounds per feature: the 1st to 99th percentile of the dataset, widened a little;
    (-1, 1) for a feature the dataset never observed."""
    ranges = {}
    for column in columns:
        values = frame[column].dropna() if column in frame.columns else pd.Series(dtype=float)
        if values.empty:
            ranges[column] = (-1.0, 1.0)
            continue
        low, high = np.percentile(values, [1, 99])
        margin = max(high - low, 1e-6) * 0.1
        ranges[column] = (float(low - margin), float(high + margin))
    return ranges
