"""Appending newer data to a stored market dataset (`trendlab data update`, the Data page).

The new rows go through the same readers as an import; they are merged with the raw inputs
kept beside the dataset (a price row for a (date, ticker) already stored replaces it, and
the update says how many did), and the whole dataset is rebuilt from them: features read
only the past, so every earlier row comes out as it was, the rows whose forward windows
the new prices complete get their labels, and the new rows get features and masks.

Tickers the dataset does not have are not added unless asked (``new_tickers``, the CLI's
``--new-tickers``): their rows are left out and the result names them with their row counts
(a file without a ticker column is named after its file, so ``AAPL.new.csv`` brings
"AAPL.NEW"; this guard is what catches it).

The result is a new version under the same name; the version it replaces stays, renamed
``NAME@vK`` with its id, rows and content hash unchanged, so every run trained on it stays
reproducible and is still listed against it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from core.market.config import DataConfig
from core.market.features import FEATURES
from core.market.sources import MarketData, build_market_dataset
from services.access import ensure_writable
from services.catalog import DatasetInfo
from services.datasets import raw_parts
from storage.db import StorageError
from storage.feature_store import load_raw_inputs, store_dataset, store_raw_inputs
from storage.repository import VERSION, get_dataset, session_scope

KEYS = {"prices": ["date", "ticker"], "macro_series": ["date", "series"]}
"""Prices and macro observations with a stored key are replaced by the update's row.
Headlines and policy events have no key (two equal headlines on a day are two headlines),
so only the update's records dated after the last stored one are added; earlier ones are
left out and counted (correcting past records is a new import)."""


def _merged(
    old: pd.DataFrame | None, new: pd.DataFrame | None, part: str
) -> tuple[pd.DataFrame | None, int]:
    """The stored part with the update's rows merged in, and how many update rows were
    left out (records without a key dated on or before the last stored one)."""
    if new is None or new.empty:
        return old, 0
    new = new.assign(date=pd.to_datetime(new["date"]))
    if old is None or old.empty:
        return new.reset_index(drop=True), 0
    old = old.assign(date=pd.to_datetime(old["date"]))
    keys = KEYS.get(part)
    if keys is None:
        later = new[new["date"] > old["date"].max()]
        both = pd.concat([old, later], ignore_index=True)
        return both.sort_values("date", kind="stable").reset_index(drop=True), len(new) - len(later)
    both = pd.concat([old, new], ignore_index=True).drop_duplicates(subset=keys, keep="last")
    return both.sort_values(keys).reset_index(drop=True), 0


BASIS_TOLERANCE = 1e-3
"""Repeated price rows whose closes differ by more than this share (median over the
overlap) are on another price basis: adjusted closes after a dividend or split."""
PRICE_LEVELS = ["open", "high", "low", "close"]


def rebased(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """The stored prices put on the update's price basis: per ticker, the median ratio of
    the update's close to the stored one over the dates both hold; where it is not 1 (an
    adjusted close recomputed after a dividend or split), the stored open, high, low and
    close are scaled by it, so no false jump appears where old and new rows meet. Returns
    the prices and the ratio applied per ticker."""
    keys = ["date", "ticker"]
    both = (
        old[[*keys, "close"]]
        .assign(date=lambda f: pd.to_datetime(f["date"]))
        .merge(
            new[[*keys, "close"]].assign(date=lambda f: pd.to_datetime(f["date"])),
            on=keys,
            suffixes=("_old", "_new"),
        )
    )
    ratios = (both["close_new"] / both["close_old"]).groupby(both["ticker"]).median()
    moved = {str(t): float(r) for t, r in ratios.items() if abs(r - 1) > BASIS_TOLERANCE}
    if not moved:
        return old, {}
    factor = old["ticker"].astype(str).map(moved).fillna(1.0).to_numpy()
    return old.assign(**{c: old[c].to_numpy(float) * factor for c in PRICE_LEVELS}), moved


def _replaced_prices(old: pd.DataFrame, new: pd.DataFrame) -> int:
    keys = old[["date", "ticker"]].assign(date=lambda f: pd.to_datetime(f["date"]))
    incoming = new[["date", "ticker"]].assign(date=lambda f: pd.to_datetime(f["date"]))
    return len(incoming.merge(keys, on=["date", "ticker"]))


def _guard_new_tickers(
    stored: pd.DataFrame, data: MarketData, name: str, allowed: bool
) -> tuple[MarketData, dict[str, int]]:
    """``data`` without the price rows of tickers the stored prices lack, unless ``allowed``,
    and those tickers with their row counts (added or left out). Raises ``ValueError`` when
    only such tickers bring prices and they are not allowed."""
    incoming = data.prices["ticker"].astype(str)
    unknown = ~incoming.isin(set(stored["ticker"].astype(str)))
    new = {str(t): int(n) for t, n in incoming[unknown].value_counts().sort_index().items()}
    if not new or allowed:
        return data, new
    if unknown.all():
        named = ", ".join(f"{t} ({n} rows)" for t, n in new.items())
        raise ValueError(
            f"Every price row of the update is of tickers {name!r} does not have: {named}; "
            "nothing was updated. Add them with --new-tickers (a file without a ticker "
            "column is named after its file)."
        )
    return replace(data, prices=data.prices[~unknown.to_numpy()].reset_index(drop=True)), new


def update_market_dataset(
    *, engine: Engine, name: str, data: MarketData, new_tickers: bool = False
) -> dict[str, Any]:
    """Merge ``data`` (read as an import reads files) into dataset ``name`` and store the
    rebuilt dataset as its next version; returns what changed. Price rows of tickers the
    dataset does not have are left out unless ``new_tickers``; ``new_tickers`` in the result
    names those tickers with their rows, ``new_tickers_added`` says which way it went."""
    ensure_writable("updating datasets")
    with session_scope(engine) as session:
        current = get_dataset(session=session, name=name)
        if current is None:
            raise StorageError(f"No dataset named {name!r}.")
        if VERSION.search(name):
            raise StorageError(
                f"{name!r} is an earlier version, kept for the runs trained on it; update "
                f"{VERSION.sub('', name)!r} instead."
            )
        if current.kind == "recommender":
            raise StorageError(f"Dataset {name!r} is a recommender dataset; update a market one.")
        raw = load_raw_inputs(session=session, dataset=current)
        recipe = dict(current.recipe)
        old_id, old_rows, old_end = current.id, current.row_count, current.end_date
        kind, source = current.kind, current.source
    config = DataConfig.from_dict(recipe.get("data_config", {}), partial=True)
    if config.end_date is not None:  # the update is what moves the end
        config = replace(config, end_date=None)
    data, unknown = _guard_new_tickers(raw["prices"], data, name, new_tickers)
    raw["prices"], rescaled = rebased(raw["prices"], data.prices)
    merging = {part: _merged(raw[part], getattr(data, part), part) for part in raw}
    parts = {part: frame for part, (frame, _) in merging.items()}
    left_out = {part: n for part, (_, n) in merging.items() if n}
    version = int(recipe.get("version", 1))
    update = {
        "price_rows": len(data.prices),
        "replaced_price_rows": _replaced_prices(raw["prices"], data.prices),
        "through": str(pd.to_datetime(data.prices["date"]).max().date()),
        "left_out": left_out,
        "rescaled": rescaled,
        "new_tickers": unknown,
        "new_tickers_added": bool(unknown) and new_tickers,
        "files": data.recipe.get("files", {}),
        "files_left_out": data.recipe.get("left_out", {}),
        "previous_id": old_id,
    }
    merged = MarketData(
        prices=parts["prices"],
        headlines=parts["headlines"],
        policy_events=parts["policy_events"],
        macro_series=parts["macro_series"],
        oracle=parts["oracle"],
    )
    frame = build_market_dataset(merged, config)  # the slow part, outside any transaction
    new_recipe = {
        **recipe,
        "data_config": config.to_dict(),
        "version": version + 1,
        "updates": [*recipe.get("updates", []), update],
    }
    archived = f"{name}@v{version}"
    with session_scope(engine) as session:  # one transaction: both names, or neither
        if get_dataset(session=session, name=archived) is not None:
            raise StorageError(f"A dataset named {archived!r} exists already; rename it first.")
        old = get_dataset(session=session, name=name)
        if old is None or old.id != old_id:
            raise StorageError(f"Dataset {name!r} changed while the update was built; retry.")
        old.name = archived
        session.flush()
        dataset = store_dataset(
            session=session,
            name=name,
            kind=kind,
            source=f"{source}; updated through {update['through']}",
            frame=frame,
            features=FEATURES,
            recipe=new_recipe,
        )
        store_raw_inputs(session=session, dataset=dataset, parts=raw_parts(merged))
        info = DatasetInfo.of(dataset)
    return {
        "dataset": info,
        "version": version + 1,
        "archived_as": archived,
        "rows_before": old_rows,
        "rows_after": len(frame),
        "end_before": str(old_end),
        "end_after": str(pd.to_datetime(frame["date"]).max().date()),
        **update,
    }
