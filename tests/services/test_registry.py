"""One registry entry is all a new model needs (issue 40): a toy market model registered in
the test appears in `trendlab models`, the Train page's pickers, a sweep and an evaluation,
with no other file touched."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest
from torch import nn
from typer.testing import CliRunner

from core.market.config import CompactDualTowerConfig, TrainingConfig
from core.market.losses import ClassificationLoss
from core.market.models import MODELS, TABULAR, THREE_CLASS, ModelSpec, class_readout
from core.market.models.dual_tower import MASK_GROUPS
from services.market.runs import execute_run, start_run
from services.registry import TRAINABLE, models_on
from services.sweeps.study import start_sweep
from storage import DataHome
from storage.repository import get_run, session_scope
from tests.pages.conftest import store_small_dataset

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TOY = "toy_linear"


@pytest.fixture
def backend() -> str:
    """DuckDB only: what is measured here (a registration, an estimate) does not depend on
    where the metadata lives, and each run trains or times a model."""
    return "duckdb"


class ToyLinear(nn.Module):
    """A linear 3-class head per horizon over every input: the smallest market model."""

    def __init__(self, config: CompactDualTowerConfig) -> None:
        super().__init__()
        self.config = config  # the trainer checks the input widths against the data
        width = config.context_dim + MASK_GROUPS + config.stock_dim
        self.heads = nn.ModuleDict({f"{h}d": nn.Linear(width, 3) for h in config.horizons})

    def forward(
        self, context: torch.Tensor, stock: torch.Tensor, context_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        joint = torch.cat([context, context_mask, stock], -1)  # (B, context + masks + stock)
        return {f"class_logits_{name}": head(joint) for name, head in self.heads.items()}


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(
        MODELS,
        TOY,
        ModelSpec(
            TOY,
            "Toy: a linear 3-class head over every input (registered by a test)",
            CompactDualTowerConfig,
            ToyLinear,
            TABULAR,
            "trend",
            False,
            lambda _loss, horizons: ClassificationLoss(horizons),
            TrainingConfig,
            THREE_CLASS,
            class_readout,
        ),
    )
    return TOY


def test_a_registered_toy_model_is_listed_by_the_cli_and_the_train_page(
    toy: str, engine: Engine
) -> None:
    import cli

    listed = CliRunner().invoke(cli.app, ["models"])
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.output.splitlines() if line.startswith(toy))
    assert "params" in line and "registered by a test" in line
    assert toy in models_on("evaluate") and toy in models_on("predict")
    store_small_dataset(engine)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    picker = next(s for s in at.selectbox if s.label == "Model")
    assert any(option.startswith(f"{toy}: Toy") for option in picker.options)
    assert toy in next(s for s in at.selectbox if s.label == "Sweep model").options


def test_a_registered_toy_model_is_swept_and_trained_and_evaluated(
    toy: str, engine: Engine, data_home: DataHome
) -> None:
    from services.jobs.manager import JobManager

    store_small_dataset(engine)
    manager = JobManager(engine=engine, home=data_home)
    sweep_id = start_sweep(
        manager,
        model_name=toy,
        dataset_name="small",
        space={"training.optimizer.base_learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}},
        trials=2,
    )
    assert sweep_id >= 1
    entry = TRAINABLE[toy]
    training = entry.training_config_class.from_dict(
        {"epochs": 2, "batch_size": 64, "scheduler": {"warmup_epochs": 0}}, partial=True
    )
    run_id = start_run(
        engine=engine,
        model_name=toy,
        dataset_name="small",
        training=training,
        model_config=entry.config_class(),
        baselines=["majority", "momentum"],
    )
    execute_run(engine=engine, home=data_home, run_id=run_id, device="cpu")
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=run_id)
        assert run.status == "succeeded", run.summary_metrics
        summary = run.summary_metrics
    assert summary["model"] == toy and summary["verdict"]
    assert set(summary["test"]) == {"7d", "30d"}
