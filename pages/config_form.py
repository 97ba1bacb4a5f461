"""The training form's widgets: plain labels with units (the field's name in the help), presets
that fill the form, list fields as one number per layer, fields the dataset fixes shown but not
editable, and everything beyond the usual few settings folded away.

Widgets keep their values in ``st.session_state`` under ``part:model:path`` keys (``part`` is
"model" or "training"), so a preset only has to write those keys before the form is drawn.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from core.config import Config, ConfigError, FlatField, flat_fields, parse_yaml

LABELS = {
    "epochs": "Epochs (at most)",
    "batch_size": "Batch size (rows per step)",
    "early_stopping_patience": "Patience (epochs without improvement)",
    "min_delta": "Smallest improvement that counts",
    "max_grad_norm": "Gradient clipping (norm, 0 = off)",
    "ema_decay": "Weight averaging (decay per step, 0 = off)",
    "seed": "Random seed",
    "threads": "Torch threads (0 = torch's own)",
    "precision": "Number format (bf16: faster on CPUs with bfloat16 units and GPUs)",
    "optimizer_type": "Optimiser",
    "base_learning_rate": "Learning rate",
    "weight_decay": "Weight decay",
    "stock_tower_lr_multiplier": "Stock tower learning rate (x the base rate)",
    "scheduler_type": "Learning-rate schedule",
    "total_epochs": "Schedule length (epochs; empty = all)",
    "warmup_epochs": "Warm-up (epochs)",
    "min_learning_rate": "Lowest learning rate",
    "plateau_factor": "On a plateau, multiply the rate by",
    "plateau_patience": "Plateau patience (epochs)",
    "hidden_dims": "Hidden layers (units each)",
    "head_hidden_dims": "Head layers (units each)",
    "embedding_dim": "Embedding size (units)",
    "hidden_dim": "LSTM width (units)",
    "num_lstm_layers": "LSTM layers",
    "num_layers": "LSTM layers",
    "num_attention_heads": "Attention heads",
    "tower_dim": "Tower width (units)",
    "dropout": "Dropout (share of units)",
    "dropout_rate": "Dropout (share of units)",
    "first_dropout": "First-layer dropout (share of units)",
    "bidirectional": "Read windows both ways",
    "interaction": "How the towers meet",
    "target": "What the model learns",
    "horizons": "Horizons (days)",
    "input_dim": "Input features",
    "news_dim": "News features",
    "policy_dim": "Policy features",
    "macro_dim": "Macro features",
    "context_dim": "Context features",
    "stock_dim": "Stock features",
    "num_direction_classes": "Direction classes",
    "regression_weight": "Score error weight",
    "classification_weight": "Class error weight",
    "horizon_weights": "Per-horizon factors",
    "regularization_weight": "Tower orthogonality penalty",
    "magnitude_weight": "Embedding magnitude penalty",
    "sequence_length": "Window (steps)",
    "step": "Step between window rows",
    "normalize_features": "Standardise features",
    "negatives_per_positive": "Negatives per positive",
    "min_interactions": "Fewest interactions per user",
    "objective": "Objective",
    "split": "Split",
}
SECTIONS = {
    "context_tower": "Context tower",
    "stock_tower": "Stock tower",
    "head": "Heads",
    "optimizer": "Optimiser",
    "scheduler": "Schedule",
    "loss": "Loss",
    "sequence": "Windows",
}
ALWAYS_SHOWN = ("training.optimizer.base_learning_rate", "model.target")
"""Beside the fields a preset sets, what people change most."""


def label(path: str) -> str:
    """'context_tower.dropout' -> 'Context tower · Dropout (share of units)'."""
    *sections, name = path.split(".")
    text = LABELS.get(name, name.replace("_", " ").capitalize())
    shown = [SECTIONS.get(s, s.replace("_", " ").capitalize()) for s in sections]
    return " · ".join([*shown, text]) if shown and sections[0] != "optimizer" else text


def key(part: str, model: str, path: str) -> str:
    return f"{part}:{model}:{path}"


def drawn_as_text(field: FlatField) -> bool:
    """Whether the form shows ``field`` as a text box of JSON (what no other widget holds: an
    optional number, a mapping), so its widget state is text rather than the value."""
    if field.choices or isinstance(field.default, bool):
        return False
    if isinstance(field.default, int | float):
        return False
    return not (isinstance(field.default, list) and all(isinstance(v, int) for v in field.default))


def apply_preset(config_classes: dict[str, type], model: str, values: dict[str, Any]) -> None:
    """Write a preset's values ({"part.path": value}) into the form's widget state (a callback:
    it runs before the page draws the widgets). Fields shown as text get their value as JSON."""
    text_fields = {
        f"{part}.{field.path}"
        for part, cls in config_classes.items()
        for field in flat_fields(cls)
        if drawn_as_text(field)
    }
    for dotted, value in values.items():
        part, path = dotted.split(".", 1)
        widget = key(part, model, path)
        if dotted in text_fields:
            st.session_state[widget] = json.dumps(value)
        elif isinstance(value, list):
            st.session_state[f"{widget}:n"] = len(value)
            for index, item in enumerate(value):
                st.session_state[f"{widget}:{index}"] = item
        else:
            st.session_state[widget] = value


def settings_values(config_class: type[Config], settings: dict[str, Any]) -> dict[str, Any]:
    """The fields a file of settings sets, checked and typed by ``config_class``: {path: value}
    for the paths present in ``settings`` (a mapping's field, ``{}`` included, stays whole).
    Raises ConfigError naming the first bad field."""
    config = config_class.from_dict(settings, partial=True)
    values = {}
    for field in flat_fields(config_class):
        given: Any = settings
        value: Any = config
        for name in field.path.split("."):
            if not isinstance(given, dict) or name not in given:
                break
            given, value = given[name], getattr(value, name)
        else:
            values[field.path] = value
    return values


def basic_paths(presets: dict[str, dict[str, Any]]) -> set[str]:
    """The fields drawn up front: those any preset sets, and the few people change most."""
    return {path for values in presets.values() for path in values} | set(ALWAYS_SHOWN)


def field_input(container: Any, field: FlatField, part: str, model: str, fixed: Any) -> Any:
    """One widget for ``field``; ``fixed`` (not None) is the dataset's value, shown but not
    editable. Returns the field's value."""
    widget = key(part, model, field.path)
    locked = fixed is not None
    value = fixed if locked else field.default
    name = label(field.path)
    help_text = f"{field.doc} (`{field.path}`)" + (" Fixed by the dataset." if locked else "")
    if locked:  # keyed by the value, so another dataset's value replaces it
        widget += f":{json.dumps(value)}"
    preset = widget in st.session_state  # a preset wrote it: no default beside it
    if field.choices:
        return container.selectbox(
            name,
            field.choices,
            **({} if preset else {"index": list(field.choices).index(value)}),
            help=help_text,
            key=widget,
            disabled=locked,
        )
    if isinstance(field.default, bool):
        return container.checkbox(
            name,
            **({} if preset else {"value": value}),
            help=help_text,
            key=widget,
            disabled=locked,
        )
    if isinstance(field.default, int | float) and value is not None:
        return container.number_input(
            name,
            **({} if preset else {"value": value}),
            help=help_text,
            key=widget,
            format="%g" if isinstance(field.default, float) else "%d",
            **({} if isinstance(field.default, float) else {"step": 1}),  # integers stay ints
            disabled=locked,
        )
    if isinstance(value, list) and all(isinstance(v, int) for v in value) and not locked:
        return layer_inputs(container, name, widget, value, help_text)
    text = container.text_input(
        name,
        **({} if preset else {"value": json.dumps(value)}),
        help=help_text,
        key=widget,
        disabled=locked,
    )
    if locked:
        return value
    try:
        return parse_yaml(text, field.path) if text and text.strip() else None
    except ConfigError as error:
        container.error(str(error))
        return text  # from_flat names the field


def layer_inputs(container: Any, name: str, widget: str, default: list[int], help_text: str):
    """A list of layer widths as a count and one number per layer."""
    counted = f"{widget}:n"
    count = container.number_input(
        f"{name}: layers",
        min_value=1,
        max_value=8,
        **({} if counted in st.session_state else {"value": len(default)}),
        key=counted,
        help=help_text,
    )
    widths = []
    for i, column in enumerate(container.columns(int(count))):
        width = f"{widget}:{i}"
        initial = default[i] if i < len(default) else default[-1]
        widths.append(
            int(
                column.number_input(
                    f"layer {i + 1}",
                    min_value=1,
                    **({} if width in st.session_state else {"value": initial}),
                    key=width,
                )
            )
        )
    return widths


def config_form(
    config_classes: dict[str, type],
    model: str,
    presets: dict[str, dict[str, Any]],
    fixed: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Draw the form for ``config_classes`` ({"model": ..., "training": ...}): the basic
    fields in a grid, the rest in a folded expander; returns {part: {path: value}}."""
    shown = basic_paths(presets)
    fields = {part: flat_fields(cls) for part, cls in config_classes.items()}
    values: dict[str, dict[str, Any]] = {part: {} for part in config_classes}
    grid = st.columns(3)
    basic = [
        (part, f) for part, items in fields.items() for f in items if f"{part}.{f.path}" in shown
    ]
    for index, (part, field) in enumerate(basic):
        values[part][field.path] = field_input(grid[index % 3], field, part, model, None)
    with st.expander("Advanced settings: dropout, loss weights, schedule, what the data fixes"):
        for part, items in fields.items():
            st.markdown(f"**{'Model' if part == 'model' else 'Training'}**")
            rest = [f for f in items if f"{part}.{f.path}" not in shown]
            columns = st.columns(3)
            for index, field in enumerate(rest):
                locked = fixed.get(field.path) if part == "model" else None
                values[part][field.path] = field_input(
                    columns[index % 3], field, part, model, locked
                )
    return values
