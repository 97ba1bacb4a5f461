from __future__ import annotations

import pandas as pd
import pytest

from core.market import predictions
from core.market.config import DataConfig
from core.market.loaders import create_data_loaders
from core.market.models import model_spec
from core.market.predictions import BaselineCache, baseline_predictions

NAMES = ("majority", "linear", "boosting", "persistence")


@pytest.fixture
def fits(monkeypatch) -> list[tuple[str, ...]]:
    """The baselines each call fitted (names), counted around the real fitting."""
    calls: list[tuple[str, ...]] = []
    real = predictions._fit_baselines

    def counted(*args, names, **kwargs):
        calls.append(tuple(names))
        return real(*args, names=names, **kwargs)

    monkeypatch.setattr(predictions, "_fit_baselines", counted)
    return calls


def test_cached_baselines_equal_fitted_ones_and_are_fitted_once(
    market_dataset, tmp_path, fits
) -> None:
    spec = model_spec("dual_tower")
    loaders = create_data_loaders(market_dataset, batch_size=64)
    cache = BaselineCache(tmp_path, dataset="hash-1")
    fitted = baseline_predictions(spec, market_dataset, loaders, names=NAMES, cache=cache)
    again = baseline_predictions(spec, market_dataset, loaders, names=NAMES, cache=cache)
    plain = baseline_predictions(spec, market_dataset, loaders, names=NAMES)
    assert fits == [NAMES, NAMES], "the second call read every baseline from the cache"
    assert list(again) == list(plain) == list(NAMES)
    for name in NAMES:
        pd.testing.assert_frame_equal(again[name], plain[name])
        pd.testing.assert_frame_equal(fitted[name], plain[name])
    assert len(list(tmp_path.glob("*.parquet"))) == len(NAMES)


def test_another_split_target_seed_or_dataset_version_fits_again(
    market_dataset, tmp_path, fits
) -> None:
    relevance, trend = model_spec("dual_tower"), model_spec("dual_tower", targets="trend")
    loaders = create_data_loaders(market_dataset, batch_size=64)
    narrower = create_data_loaders(
        market_dataset, batch_size=64, config=DataConfig(train_fraction=0.6, val_fraction=0.25)
    )
    cache = BaselineCache(tmp_path, dataset="hash-1")
    ask = ("majority",)
    baseline_predictions(relevance, market_dataset, loaders, names=ask, cache=cache)
    baseline_predictions(relevance, market_dataset, narrower, names=ask, cache=cache)
    baseline_predictions(relevance, market_dataset, loaders, names=ask, seed=1, cache=cache)
    baseline_predictions(relevance, market_dataset, loaders, names=ask, cache=cache)
    trend_loaders = create_data_loaders(market_dataset, batch_size=64, targets="trend")
    baseline_predictions(trend, market_dataset, trend_loaders, names=ask, cache=cache)
    newer = BaselineCache(tmp_path, dataset="hash-2")
    baseline_predictions(relevance, market_dataset, loaders, names=ask, cache=newer)
    assert len(fits) == 5, "each question but the repeated one was fitted"


def test_a_read_only_cache_keeps_nothing_and_a_damaged_file_is_refitted(
    market_dataset, tmp_path, fits
) -> None:
    spec = model_spec("dual_tower")
    loaders = create_data_loaders(market_dataset, batch_size=64)
    read_only = BaselineCache(tmp_path, dataset="hash-1", writable=False)
    baseline_predictions(spec, market_dataset, loaders, names=("linear",), cache=read_only)
    assert not list(tmp_path.iterdir())
    cache = BaselineCache(tmp_path, dataset="hash-1")
    baseline_predictions(spec, market_dataset, loaders, names=("linear",), cache=cache)
    (kept,) = tmp_path.glob("*.parquet")
    kept.write_bytes(b"not parquet")
    again = baseline_predictions(spec, market_dataset, loaders, names=("linear",), cache=cache)
    assert len(fits) == 3 and len(again["linear"]) == loaders.test.num_rows
