"""Issue 36: walk-forward evaluation judges the folds' joined out-of-sample predictions, so
the verdict rests on most of the history; on a universe with nothing to find it says so."""

from __future__ import annotations

import pandas as pd
import pytest

from core.market.config import DataConfig
from core.market.models import model_spec
from core.market.sources import build_market_dataset, synthetic_data
from core.market.walk_forward import walk_forward_evaluation


class Heard:
    """A trainer callback that records the stages and epochs it hears."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_stage(self, stage: str, index: int, total: int) -> None:
        self.events.append((stage, index, total))

    def on_batch_end(self, trainer, step, components) -> None:
        pass

    def on_epoch_end(self, trainer, record) -> None:
        self.events.append(("epoch",))


def _walk_forward(signal: bool, seed: int, folds: int = 3, callbacks=()):
    tickers = [f"U{i:02d}" for i in range(24)]
    data = synthetic_data(
        tickers, "2016-01-01", "2020-12-31", seed=seed, signal=signal, horizons=[7]
    )
    config = DataConfig(tickers=tickers, horizons=[7])
    frame = build_market_dataset(data, config)
    spec = model_spec("compact_dual_tower")
    result = walk_forward_evaluation(
        frame,
        model_name="compact_dual_tower",
        model_config=spec.config_class.from_dict({"tower_dim": 8}, partial=True),
        training=spec.training_config_class.from_dict(
            {"epochs": 2, "batch_size": 512, "scheduler": {"warmup_epochs": 0}}, partial=True
        ),
        data=config,
        folds=folds,
        baselines=("majority", "momentum", "linear"),
        callbacks=callbacks,
    )
    return frame, result


HEARD = Heard()


@pytest.fixture(scope="module")
def control():
    return _walk_forward(signal=False, seed=21, callbacks=[HEARD])


def test_each_fold_is_announced_to_the_progress_callbacks_before_it_trains(control) -> None:
    """Issue 39: a queued walk-forward showed no progress; the worker's progress events now
    carry the fold (services.jobs.worker.ProgressEvents.on_stage)."""
    stages = [e for e in HEARD.events if e[0] == "fold"]
    assert stages == [("fold", 1, 3), ("fold", 2, 3), ("fold", 3, 3)]
    first = HEARD.events.index(("fold", 1, 3))
    second = HEARD.events.index(("fold", 2, 3))
    assert first == 0 and ("epoch",) in HEARD.events[first:second], "fold 1 trains after it"


def test_the_joined_predictions_are_every_fold_s_test_rows_judged_once(control) -> None:
    frame, result = control
    joined = result["joined"]
    assert joined["test_rows"] == sum(fold["test_rows"] for fold in result["folds"])
    starts = [pd.Timestamp(f["test_start"]) for f in result["folds"]]
    ends = [pd.Timestamp(f["test_end"]) for f in result["folds"]]
    assert all(end < start for end, start in zip(ends, starts[1:], strict=False)), "no overlap"
    assert joined["test_start"] == result["folds"][0]["test_start"]
    assert joined["test_end"] == result["folds"][-1]["test_end"]
    dates = frame["date"].nunique()
    assert joined["test_dates"] > 0.5 * dates, "most of the history is out of sample"
    judged = joined["uncertainty"]
    assert judged["primary"]["metric"] == "rank_ic", "24 tickers: a cross-section"
    section = judged["horizons"]["7d"]
    assert section["judged"] and section["blocks"] >= 10
    ic = section["rank_ic"]["model"]
    assert ic["ic_low"] < ic["ic_mean"] < ic["ic_high"]
    assert set(joined["reports"]) == {"model", "majority", "momentum", "linear"}


def test_the_no_signal_control_cross_sectional_and_walk_forward_finds_no_evidence(
    control,
) -> None:
    """A generated universe with no planted signal: the verdict is not "beats", and the lead
    over the best baseline is far from the bar (its lower bound well below 0), so no CPU's
    rounding moves it across."""
    _, result = control
    judged = result["joined"]["uncertainty"]
    assert judged["verdict"]["verdict"] in ("no evidence", "collapsed"), judged["verdict"]
    assert judged["horizons"]["7d"]["primary"]["family_low"] < -0.005
