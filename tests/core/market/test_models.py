"""Every registered model: tiny config, right keys, shapes and ranges, no NaN."""

from __future__ import annotations

import pytest
import torch

from core.config import ConfigError
from core.market.models import MODELS, count_parameters, create_model, model_spec

TINY = {
    "dual_tower": {
        "context_tower": {"hidden_dims": [8], "embedding_dim": 4},
        "stock_tower": {"hidden_dims": [8], "embedding_dim": 6},
        "head": {"hidden_dims": [4]},
    },
    "lstm_attention": {
        "hidden_dim": 8,
        "num_lstm_layers": 1,
        "num_attention_heads": 2,
        "head_hidden_dims": [4],
    },
    "simple_lstm": {"hidden_dim": 8, "num_layers": 1, "head_hidden_dims": [4]},
    "compact_dual_tower": {"tower_dim": 4},
}
BATCH, STEPS = 5, 6


def inputs_for(name: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    if model_spec(name).sequence:
        return {"sequence": torch.randn(BATCH, STEPS, 62, generator=generator)}
    return {
        "context": torch.randn(BATCH, 25, generator=generator),
        "stock": torch.randn(BATCH, 62, generator=generator),
        "context_mask": torch.tensor([[1.0, 0.0, 1.0]] * BATCH),
    }


EXPECTED = {
    "dual_tower": {
        "score_7d": (BATCH,),
        "score_30d": (BATCH,),
        "direction_logits_7d": (BATCH, 3),
        "direction_logits_30d": (BATCH, 3),
        "pos_prob_7d": (BATCH,),
        "pos_prob_30d": (BATCH,),
        "context_embedding": (BATCH, 4),
        "stock_embedding": (BATCH, 6),
    },
    "lstm_attention": {
        "7day_trend": (BATCH,),
        "7day_direction": (BATCH, 2),
        "30day_trend": (BATCH,),
        "30day_direction": (BATCH, 2),
        "attention_weights": (BATCH, STEPS),
    },
    "simple_lstm": {"class_logits_7d": (BATCH, 3), "class_logits_30d": (BATCH, 3)},
    "compact_dual_tower": {"class_logits_7d": (BATCH, 3), "class_logits_30d": (BATCH, 3)},
}


def test_every_registered_model_is_covered() -> None:
    assert set(MODELS) == set(TINY) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_outputs_have_the_promised_keys_shapes_and_ranges(name: str) -> None:
    model = create_model(name, **TINY[name]).eval()
    spec = model_spec(name)
    batch = inputs_for(name)
    outputs = model(*(batch[k] for k in spec.inputs))
    assert {k: tuple(v.shape) for k, v in outputs.items()} == EXPECTED[name]
    assert all(torch.isfinite(v).all() for v in outputs.values())
    for h in (7, 30):
        score, probs = spec.readout(outputs, h)
        assert score.abs().max() <= 1 and torch.allclose(probs.sum(-1), torch.ones(BATCH))
    if name == "lstm_attention":
        weights = outputs["attention_weights"]
        assert (weights >= 0).all() and torch.allclose(weights.sum(-1), torch.ones(BATCH))
    if name == "dual_tower":
        probs = torch.softmax(outputs["direction_logits_7d"], -1)[:, 2]
        assert torch.allclose(outputs["pos_prob_7d"], probs)
        embeddings = model.extract_embeddings(batch["context"], batch["stock"])
        assert embeddings["context_embedding"].shape == (BATCH, 4)


def test_default_sizes_follow_the_seeds() -> None:
    dual = create_model("dual_tower")
    assert dual.context_tower.body[0].in_features == 25 + 3, "25 features + 3 group masks"
    assert dual.context_tower.embed.out_features == 32
    assert dual.stock_tower.embed.out_features == 64
    lstm = create_model("lstm_attention")
    assert lstm.lstm.hidden_size == 128 and lstm.lstm.bidirectional and lstm.lstm.num_layers == 2
    assert lstm.attention.num_heads == 4
    assert count_parameters(create_model("compact_dual_tower")) < 3000


def test_masks_change_the_context_embedding() -> None:
    model = create_model("dual_tower", **TINY["dual_tower"]).eval()
    batch = inputs_for("dual_tower")
    seen = model(batch["context"], batch["stock"], torch.ones(BATCH, 3))
    masked = model(batch["context"], batch["stock"], torch.zeros(BATCH, 3))
    assert not torch.allclose(seen["context_embedding"], masked["context_embedding"])


def test_concat_interaction_ablation_and_bad_names() -> None:
    concat = create_model("dual_tower", interaction="concat", **TINY["dual_tower"])
    assert concat.bilinear is None
    with pytest.raises(KeyError, match="known models: dual_tower"):
        create_model("transformer")
    with pytest.raises(ConfigError, match="hidden_dim"):
        create_model("lstm_attention", hidden_dim=10, num_attention_heads=4)


def test_input_gates_scale_each_feature_and_configs_stored_before_them_load_without() -> None:
    from core.market.config import DualTowerModelConfig
    from core.market.models.dual_tower import DualTowerRelevanceModel

    model = create_model("dual_tower", **TINY["dual_tower"]).eval()
    assert model.context_gate.scale.shape == (28,) and model.stock_gate.scale.shape == (62,)
    weight = model.config.input_gate_l1
    assert float(model.regularization()["input_gates"].detach()) == pytest.approx(weight * 90)
    batch = inputs_for("dual_tower")
    with torch.no_grad():
        model.stock_gate.scale[5] = 0.0
    moved = batch["stock"].clone()
    moved[:, 5] += 3.0
    (
        torch.testing.assert_close(
            model(batch["context"], moved)["score_7d"],
            model(batch["context"], batch["stock"])["score_7d"],
        ),
        "a closed gate shuts its feature out",
    )
    stored = model.config.to_dict()
    del stored["input_gate_l1"]
    older = DualTowerModelConfig.from_dict(stored)
    assert older.input_gate_l1 == 0.0, "a whole config from before the gates had none"
    plain = DualTowerRelevanceModel(older)
    assert plain.context_gate is None and plain.regularization() == {}
    assert "context_gate.scale" not in plain.state_dict()
    override = DualTowerModelConfig.from_dict({"interaction": "concat"}, partial=True)
    assert override.input_gate_l1 == DualTowerModelConfig().input_gate_l1 > 0
    sections = {"context_tower": {}, "stock_tower": {}, "head": {}, "interaction": "concat"}
    every_section = DualTowerModelConfig.from_dict(sections, partial=True)
    assert every_section.input_gate_l1 > 0, "an override naming every section is no stored one"
    with pytest.raises(ConfigError, match="input_gate_l1"):
        create_model("dual_tower", input_gate_l1=-1.0)


def test_the_evaluation_names_each_input_gate_largest_first() -> None:
    from core.market.evaluation import input_gate_scales
    from core.market.features import CONTEXT_FEATURES, STOCK_FEATURES

    model = create_model("dual_tower", **TINY["dual_tower"])
    with torch.no_grad():
        model.stock_gate.scale.fill_(0.5)
        model.stock_gate.scale[STOCK_FEATURES.index("ret_63d")] = -3.0
        model.context_gate.scale.fill_(0.1)
        model.context_gate.scale[CONTEXT_FEATURES.index("vix_level")] = 2.0
    gates = input_gate_scales(model)
    assert len(gates) == 90 and list(gates)[:2] == ["ret_63d", "vix_level"]
    assert gates["ret_63d"] == 3.0 and gates["mask_macro"] == pytest.approx(0.1)
    assert input_gate_scales(create_model("dual_tower", input_gate_l1=0.0)) == {}
