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
        "members": 1,
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
    ensemble = create_model("dual_tower")
    assert len(ensemble.members) == 3, "three members by default"
    dual = ensemble.members[0]
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
    stored = DualTowerModelConfig().to_dict()
    del stored["input_gate_l1"], stored["members"]
    older = DualTowerModelConfig.from_dict(stored)
    assert older.input_gate_l1 == 0.0, "a whole config from before the gates had none"
    assert older.members == 1, "nor members"
    assert DualTowerModelConfig.from_dict({"members": 2}, partial=True).input_gate_l1 > 0
    plain = DualTowerRelevanceModel(older)
    assert plain.context_gate is None and plain.regularization() == {}
    assert "context_gate.scale" not in plain.state_dict()
    override = DualTowerModelConfig.from_dict({"interaction": "concat"}, partial=True)
    assert override.input_gate_l1 == DualTowerModelConfig().input_gate_l1 > 0
    assert override.members == DualTowerModelConfig().members == 3
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


ENSEMBLE = {
    **TINY["dual_tower"],
    "members": 3,
    "context_tower": {"hidden_dims": [8], "embedding_dim": 4, "dropout": 0.0},
    "stock_tower": {"hidden_dims": [8], "embedding_dim": 6, "dropout": 0.0},
    "head": {"hidden_dims": [4], "dropout": 0.0},
}


def test_an_ensemble_predicts_its_members_mean_and_embeds_as_its_first() -> None:
    from core.market.evaluation import input_gate_scales
    from core.market.losses import MEMBER_OUTPUTS

    torch.manual_seed(0)
    model = create_model("dual_tower", **ENSEMBLE).eval()
    batch = inputs_for("dual_tower")
    with torch.no_grad():
        got = model(**batch)
        alone = [member(**batch) for member in model.members]
    assert len(alone) == 3 and MEMBER_OUTPUTS not in got
    assert not torch.allclose(alone[0]["score_7d"], alone[1]["score_7d"]), "own initialisations"
    for key in ("score_7d", "direction_logits_30d", "pos_prob_7d"):
        torch.testing.assert_close(got[key], sum(a[key] for a in alone) / 3)
    torch.testing.assert_close(got["context_embedding"], alone[0]["context_embedding"])
    with torch.no_grad():
        for member, scale in zip(model.members, (1.0, 4.0, 0.5), strict=True):
            member.stock_gate.scale.fill_(-scale)
    gates = input_gate_scales(model)
    assert len(gates) == 90 and gates["ret_63d"] == pytest.approx(5.5 / 3), "the members' mean"
    assert len(model.train()(**batch)[MEMBER_OUTPUTS]) == 3


def test_each_member_of_an_ensemble_learns_from_its_own_loss() -> None:
    """The oracle: a member's gradient from the ensemble's training loss is its gradient
    alone, over the number of members, and the loss is the mean of the members' losses (not
    the loss of their mean)."""
    from core.market.losses import DualTowerLoss

    torch.manual_seed(1)
    model = create_model("dual_tower", **ENSEMBLE).train()
    batch = inputs_for("dual_tower")
    targets = {f"relevance_{h}d": torch.linspace(-0.9, 0.9, BATCH) * (h / 30) for h in (7, 30)} | {
        f"relevance_class_{h}d": torch.tensor([0, 1, 2, 1, 0]) for h in (7, 30)
    }
    loss = DualTowerLoss()
    total, components = loss(model(**batch), targets)
    total.backward()
    together = [p.grad.clone() for p in model.members[2].parameters()]
    model.zero_grad()
    each = [loss(member(**batch), targets) for member in model.members]
    assert float(total) == pytest.approx(sum(float(t) for t, _ in each) / 3, rel=1e-6)
    assert components["mse_7d"] == pytest.approx(sum(c["mse_7d"] for _, c in each) / 3)
    with torch.no_grad():
        mean_outputs = model.eval()(**batch)
    assert float(loss(mean_outputs, targets)[0]) != pytest.approx(float(total))
    each[2][0].backward()
    for got, alone in zip(together, model.members[2].parameters(), strict=True):
        torch.testing.assert_close(got * 3, alone.grad)
    with pytest.raises(ConfigError, match="members"):
        create_model("dual_tower", members=0)
