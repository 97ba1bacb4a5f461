from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, inspect

from storage import StorageError
from storage.feature_store import (
    find_dataset_by_recipe,
    frame_hash,
    load_dataset_frame,
    store_dataset,
)
from storage.repository import count_rows, delete_dataset, get_dataset, session_scope


def _frame(rows: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2021-01-01", periods=rows)
    frame = pd.concat(
        [
            pd.DataFrame({"date": dates, "ticker": t, "f1": rng.normal(size=rows), "f2": np.nan})
            for t in ("AAA", "BBB")
        ],
        ignore_index=True,
    )
    frame["trend_7d"] = rng.uniform(-1, 1, len(frame))
    return frame


RECIPE = {"source": "synthetic", "seed": 3, "tickers": ["AAA", "BBB"]}


def _store(session, name: str = "demo", **overrides):
    arguments = {
        "kind": "synthetic",
        "source": "generator",
        "frame": _frame(),
        "features": ["f1"],
        "recipe": RECIPE,
        **overrides,
    }
    return store_dataset(session=session, name=name, **arguments)


def test_stored_dataset_reads_back_identical(engine: Engine) -> None:
    frame = _frame()
    with session_scope(engine) as session:
        dataset = _store(session, frame=frame, features=["f1", "f2"])
    assert dataset.row_count == 100 and dataset.tickers == ["AAA", "BBB"]
    assert dataset.content_hash == frame_hash(frame)
    with session_scope(engine) as session:
        back = load_dataset_frame(session=session, name="demo")
    pd.testing.assert_frame_equal(back, frame)
    assert frame_hash(back) == dataset.content_hash


def test_same_recipe_is_found_for_reuse(engine: Engine) -> None:
    with session_scope(engine) as session:
        _store(session)
    with session_scope(engine) as session:
        found = find_dataset_by_recipe(session=session, recipe=dict(reversed(RECIPE.items())))
        assert found is not None and found.name == "demo"
        assert find_dataset_by_recipe(session=session, recipe={**RECIPE, "seed": 4}) is None


def test_failed_store_leaves_no_row_and_no_table(engine: Engine) -> None:
    with session_scope(engine) as session:
        _store(session)
    tables_before = set(inspect(engine).get_table_names())
    with pytest.raises(StorageError, match="exists already"), session_scope(engine) as session:
        _store(session, "other", recipe={**RECIPE, "seed": 9})
        # Fails after the first store wrote its table: the whole transaction must go.
        _store(session)
    assert set(inspect(engine).get_table_names()) == tables_before
    with session_scope(engine) as session:
        assert count_rows(session=session)["datasets"] == 1
        assert get_dataset(session=session, name="other") is None


def test_bad_frames_and_unknown_names_are_explained(engine: Engine) -> None:
    with session_scope(engine) as session:
        with pytest.raises(StorageError, match="lacks the columns f9"):
            _store(session, "x", kind="k", source="s", features=["f9"], recipe={})
        with pytest.raises(StorageError, match="has no rows"):
            _store(session, "x", kind="k", source="s", frame=_frame().iloc[:0], recipe={})
        with pytest.raises(StorageError, match="No dataset named 'nope'; known datasets: none"):
            load_dataset_frame(session=session, name="nope")


def test_dropping_a_dataset_removes_its_table(engine: Engine) -> None:
    with session_scope(engine) as session:
        dataset = _store(session)
    with session_scope(engine) as session:
        assert delete_dataset(session=session, name="demo")
    assert f"dataset_{dataset.id}" not in inspect(engine).get_table_names()
