from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from core.config import ConfigError, OptimizerConfig, SchedulerConfig, field_docs
from core.market.config import (
    ContextTowerConfig,
    DataConfig,
    DualTowerModelConfig,
    LossConfig,
    RelevanceHeadConfig,
    StockTowerConfig,
    TrainingConfig,
)
from core.market.lstm_config import LSTMModelConfig, LSTMSequenceConfig, LSTMTrainingConfig
from core.recsys.config import RecsysTrainingConfig, TwoTowerConfig
from services.config_index import CONFIG_CLASSES, ConfigManager


@pytest.mark.parametrize("name", sorted(CONFIG_CLASSES))
def test_defaults_round_trip_through_yaml_file(name: str, tmp_path: Path) -> None:
    cls = CONFIG_CLASSES[name]
    original = cls()
    path = tmp_path / f"{name}.yaml"
    original.save_yaml(path)
    assert cls.load_yaml(path) == original


def _customised() -> ConfigManager:
    config = ConfigManager()
    config.model_config.context_tower.hidden_dims = [64, 16]
    config.model_config.stock_tower.dropout = 0.45
    config.model_config.interaction = "concat"
    config.training_config.optimizer.optimizer_type = "adamw"
    config.training_config.optimizer.weight_decay = 3.3e-7
    config.training_config.scheduler.scheduler_type = "plateau"
    config.training_config.scheduler.total_epochs = 40
    config.training_config.loss.regularization_weight = 0.125
    config.data_config.tickers = ["SPX", "NDX"]
    config.data_config.purge_days = 45
    config.lstm_training_config.sequence.step = "daily"
    config.two_tower_config.objective = "in_batch_softmax"
    return config


def test_customised_manager_round_trips_through_save_and_load(tmp_path: Path) -> None:
    original = _customised()
    original.save_config(tmp_path / "all.yaml")
    loaded = ConfigManager.load_config(tmp_path / "all.yaml")
    assert loaded == original
    assert loaded.to_dict() == original.to_dict()
    assert loaded != ConfigManager()


@given(
    lr=st.floats(min_value=1e-12, max_value=10, allow_nan=False),
    decay=st.floats(min_value=0, max_value=1, allow_nan=False),
    mult=st.floats(min_value=1e-6, max_value=100),
)
def test_float_fields_survive_yaml_exactly(lr: float, decay: float, mult: float) -> None:
    config = OptimizerConfig(
        base_learning_rate=lr, weight_decay=decay, stock_tower_lr_multiplier=mult
    )
    assert OptimizerConfig.from_dict(yaml.safe_load(config.to_yaml())) == config


def test_defaults_are_the_seed_numbers() -> None:
    context, stock, head = ContextTowerConfig(), StockTowerConfig(), RelevanceHeadConfig()
    assert (context.news_dim, context.policy_dim, context.macro_dim) == (8, 5, 12)
    assert context.input_dim == 25
    assert (context.hidden_dims, context.embedding_dim, context.dropout) == ([128, 64, 32], 32, 0.2)
    assert (stock.input_dim, stock.hidden_dims, stock.embedding_dim) == (62, [256, 128, 64], 64)
    assert stock.dropout == 0.3
    assert (head.hidden_dims, head.dropout) == ([16, 8], 0.2)
    loss = LossConfig()
    assert (loss.regression_weight, loss.classification_weight) == (1.0, 0.5)
    assert loss.horizon_weight(7) == loss.horizon_weight(30) == 1.0
    assert loss.regularization_weight == 0.01
    optimizer = OptimizerConfig()
    assert (optimizer.base_learning_rate, optimizer.weight_decay) == (0.001, 1e-5)
    assert optimizer.stock_tower_lr_multiplier == 0.5
    scheduler = SchedulerConfig()
    assert (scheduler.scheduler_type, scheduler.warmup_epochs) == ("cosine", 5)
    training = TrainingConfig()
    assert (training.batch_size, training.epochs, training.early_stopping_patience) == (32, 100, 15)
    assert training.max_grad_norm == 1.0
    assert DataConfig().tickers == ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA"]
    assert DataConfig().effective_purge_days == 30
    lstm = LSTMModelConfig()
    assert (lstm.input_dim, lstm.hidden_dim, lstm.num_lstm_layers) == (62, 128, 2)
    assert (lstm.num_attention_heads, lstm.dropout_rate, lstm.bidirectional) == (4, 0.2, True)
    assert lstm.head_hidden_dims == [64, 32]
    sequence = LSTMSequenceConfig()
    assert sequence.sequence_length == 12
    assert LSTMTrainingConfig().loss.classification_weight == 0.5
    two = TwoTowerConfig()
    assert (two.hidden_dims, two.embedding_dim, two.first_dropout, two.dropout) == (
        [512, 256],
        128,
        0.3,
        0.2,
    )
    assert (two.cold_max_interactions, two.hot_min_interactions) == (5, 20)
    training = RecsysTrainingConfig()
    optimizer = training.optimizer
    # least-squares ids, then the towers' epochs (docs/recommender.md says why they left the
    # seed's pairwise 1e-3 / 0.01 / 256 / 50, which objective weighted_bce still trains with)
    assert (optimizer.optimizer_type, optimizer.base_learning_rate) == ("adamw", 0.005)
    assert (optimizer.weight_decay, training.batch_size, training.epochs) == (0.0, 1024, 10)
    assert (training.objective, training.mask_share, training.als_sweeps) == (
        "implicit_als",
        0.3,
        10,
    )
    assert (training.early_stopping_patience, training.negatives_per_positive) == (3, 2)
    assert (two.history_pooling, two.pooling_gravity, two.pooling_l2) == (
        "least_squares",
        0.05,
        0.01,
    )
    assert training.scheduler.scheduler_type == "cosine" and training.scheduler.warmup_epochs == 0


def test_a_recommender_config_of_an_earlier_version_splits_into_model_and_training() -> None:
    """Before the split one TwoTowerConfig held training too; stored runs still load."""
    from core.recsys.config import recsys_configs

    old = {**TwoTowerConfig().to_dict(), "learning_rate": 0.01, "epochs": 7, "split": "user"}
    model, training = recsys_configs(old, partial=False)
    assert model == TwoTowerConfig()
    assert (training.epochs, training.split) == (7, "user")
    assert training.optimizer.base_learning_rate == 0.01
    assert training.optimizer.optimizer_type == "adamw", "the recommender's own default stays"
    with pytest.raises(ConfigError, match="no such field"):
        recsys_configs({"hiden_dims": [8]})


def _set(data: dict, dotted: str, value: object) -> dict:
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[leaf] = value
    return data


@pytest.mark.parametrize(
    ("dotted", "value", "allowed"),
    [
        ("training_config.optimizer.base_learning_rate", -0.01, "> 0"),
        ("model_config.context_tower.dropout", 1.0, "[0, 1)"),
        ("model_config.stock_tower.dropout", -0.1, "[0, 1)"),
        ("training_config.scheduler.scheduler_type", "linear", "one of 'cosine'"),
        ("training_config.batch_size", "32x", "an integer"),
        ("training_config.batch_size", True, "an integer"),
        ("training_config.epochs", 0, "> 0"),
        ("training_config.loss.regression_weight", float("nan"), "a number"),
        ("model_config.interaction", "sum", "one of 'bilinear'"),
        ("data_config.purge_days", 10, "at least the longest horizon"),
        ("data_config.test_fraction", 0.3, "sum to 1"),
        ("data_config.start_date", "2015-13-01", "a date"),
        ("data_config.tickers", ["A", "A"], "no duplicates"),
        ("lstm_model_config.hidden_dim", 130, None),
        ("model_config.stock_tower.hidden_dims", [256, -1], "positive integers"),
        ("two_tower_config.hot_min_interactions", 2, "at least cold_max_interactions"),
    ],
)
def test_invalid_value_names_field_value_and_allowed(
    dotted: str, value: object, allowed: str | None
) -> None:
    data = _set(ConfigManager().to_dict(), dotted, value)
    with pytest.raises(ConfigError) as caught:
        ConfigManager.from_dict(data)
    err = caught.value
    if dotted == "lstm_model_config.hidden_dim":
        # The divisibility rule is reported on the heads, which it constrains.
        assert err.field == "lstm_model_config.num_attention_heads"
        assert "divisor of hidden_dim (130)" in err.allowed
        return
    assert err.field == dotted
    assert str(value)[:4] in str(err) or repr(value)[:4] in str(err)
    assert allowed in err.allowed


def test_unknown_key_is_named_with_its_path() -> None:
    data = ConfigManager().to_dict()
    data["training_config"]["batchsize"] = 64
    with pytest.raises(ConfigError, match="no such field") as caught:
        ConfigManager.from_dict(data)
    assert caught.value.field == "training_config.batchsize"
    assert "batch_size" in caught.value.allowed


def test_missing_key_is_an_error_unless_partial(tmp_path: Path) -> None:
    data = ConfigManager().to_dict()
    del data["training_config"]["optimizer"]["weight_decay"]
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="key is missing") as caught:
        ConfigManager.load_config(path)
    assert caught.value.field == "training_config.optimizer.weight_decay"
    assert str(path) in str(caught.value)
    partial = ConfigManager.load_config(path, partial=True)
    assert partial.training_config.optimizer.weight_decay == 1e-5


def test_partial_override_file_changes_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "override.yaml"
    path.write_text("training_config:\n  batch_size: 64\n  optimizer:\n    weight_decay: 1e-4\n")
    config = ConfigManager.load_config(path, partial=True)
    assert config.training_config.batch_size == 64
    assert config.training_config.optimizer.weight_decay == pytest.approx(1e-4)
    assert config.training_config.epochs == 100


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("training_config:\n  batch_size: [32\n  epochs: 3\n")
    with pytest.raises(ConfigError) as caught:
        ConfigManager.load_config(path)
    assert str(path) in str(caught.value)
    assert "line" in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="an existing YAML file"):
        ConfigManager.load_config(tmp_path / "nope.yaml")


def test_constructor_validates_too() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainingConfig(max_grad_norm=-1.0)
    assert caught.value.field == "max_grad_norm"
    with pytest.raises(ConfigError, match="warmup_epochs"):
        SchedulerConfig(total_epochs=5, warmup_epochs=5)
    assert TrainingConfig(epochs=3).epochs == 3  # the warm-up is capped by the scheduler


def test_a_failed_save_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "blocker"
    target.write_text("a file where a folder is needed")
    with pytest.raises(OSError):
        TrainingConfig().save_yaml(target / "cfg.yaml")
    assert target.read_text() == "a file where a folder is needed"


@pytest.mark.parametrize("name", sorted(CONFIG_CLASSES))
def test_every_field_has_a_docstring(name: str) -> None:
    import dataclasses

    cls = CONFIG_CLASSES[name]
    docs = field_docs(cls)
    assert {f.name for f in dataclasses.fields(cls)} == set(docs)
    assert all(text.strip() for text in docs.values())


def test_nested_model_config_builds_from_plain_dicts() -> None:
    config = DualTowerModelConfig.from_dict(
        {"context_tower": {"macro_dim": 4}, "head": {"dropout": 0.0}}, partial=True
    )
    assert config.context_tower.input_dim == 17
    assert isinstance(config.stock_tower, StockTowerConfig)


def _alias_bomb(levels: int) -> str:
    """The "billion laughs": each level holds ten aliases of the one before."""
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bombs_and_self_references_are_refused_before_expansion() -> None:
    """Issue 13, item 4: a 664-byte upload took the server to 1.6 GB."""
    from core.config import MAX_YAML_VALUES, parse_yaml

    bomb = _alias_bomb(9)  # 10^9 values once expanded, under 700 bytes
    assert len(bomb) < 700
    with pytest.raises(ConfigError, match=f"at most {MAX_YAML_VALUES} values"):
        parse_yaml(bomb, "bomb.yaml")
    with pytest.raises(ConfigError, match=r"bomb\.yaml"):
        parse_yaml("loop: &loop [*loop]\n", "bomb.yaml")
    with pytest.raises(ConfigError, match="at most"):
        parse_yaml("x: " + "y" * (2 << 20), "big.yaml")
    shared = parse_yaml("base: &base {dropout: 0.1}\nother: *base\n")
    assert shared == {"base": {"dropout": 0.1}, "other": {"dropout": 0.1}}, "modest aliases"


def test_the_train_page_refuses_an_alias_bomb_upload(data_home) -> None:
    from streamlit.testing.v1 import AppTest

    page = Path(__file__).resolve().parents[2] / "pages" / "train.py"
    at = AppTest.from_file(str(page), default_timeout=60).run()
    at.file_uploader[0].upload("bomb.yaml", _alias_bomb(5).encode(), "application/yaml").run()
    assert not at.exception, at.exception
    assert any("bomb.yaml" in e.value and "aliases" in e.value for e in at.error)


def test_a_file_of_recommender_overrides_is_not_read_as_an_old_stored_config() -> None:
    """Only a mapping with every field stored configs hold gets the earlier versions'
    defaults (no item bias, mean pooling); a file naming a few widths keeps today's."""
    from core.recsys.config import STORED_FIELDS, TwoTowerConfig

    widths = TwoTowerConfig.from_dict(
        {"hidden_dims": [16], "embedding_dim": 8, "id_dim": 8}, partial=True
    )
    assert widths.item_bias and widths.history_pooling == "least_squares"
    stored = {k: v for k, v in TwoTowerConfig().to_dict().items() if k in STORED_FIELDS}
    old = TwoTowerConfig.from_dict(stored, partial=True)
    assert not old.item_bias and old.history_pooling == "mean"
