"""Checkpoints: weights + config + normaliser + features + metadata, safe to load.

A checkpoint is a ``torch.save`` of plain containers: the state dict (tensors), the metadata
as a JSON string, and for ``last.pt`` the trainer's state (optimizer tensors, history). It
loads with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects, so a
checkpoint from elsewhere cannot run code. ``core.market.models.rebuild_model`` turns a
market model's checkpoint back into the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not match the code."""


@dataclass
class Checkpoint:
    path: Path
    meta: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    trainer_state: dict[str, Any] | None


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    meta: dict[str, Any],
    trainer_state: dict[str, Any] | None = None,
) -> Path:
    """Write atomically (temporary file, then rename): a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta_json": json.dumps(meta, default=str),
        "trainer_state": trainer_state,
    }
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(payload, temporary)
    temporary.replace(path)
    return path


def load_checkpoint(path: Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, not a torch file, or holds pickled objects
        raise CheckpointError(
            f"{path} is not a readable Trendlab checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]})."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"{path} has checkpoint format {found!r}; this version reads {CHECKPOINT_FORMAT}."
        )
    try:
        meta = json.loads(payload["meta_json"])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} has no readable metadata ({error}).") from None
    return Checkpoint(path, meta, payload["state_dict"], payload.get("trainer_state"))
