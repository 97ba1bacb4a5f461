"""A trained recommender's files (seed 004's set, without pickle):

best.pt             weights (written by the trainer; loads with weights_only=True)
last.pt             the latest epoch, with the trainer state
encoder.json        the fitted feature encoder
config.json         the TwoTowerConfig
history.json        one record per epoch (losses, validation ranking metrics, lr)
test_metrics.json   test metrics of the model and the baselines, all and cold users
ranker.json         the second stage (core.recsys.ranker): its engines and LightGBM text model
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.checkpoints import CheckpointError, load_checkpoint
from core.recsys.config import TwoTowerConfig, recsys_configs
from core.recsys.engines import MODEL, SECOND_STAGE
from core.recsys.features import RecsysEncoder
from core.recsys.model import TwoTowerRecommender
from core.recsys.training import MODEL_NAME, RecsysResult

FILES = {
    "checkpoint": "best.pt",
    "checkpoint_last": "last.pt",
    "encoder": "encoder.json",
    "config": "config.json",
    "history": "history.json",
    "test_metrics": "test_metrics.json",
    SECOND_STAGE: "ranker.json",  # the artifact kind older runs recorded too
}


def save_recommender(result: RecsysResult, folder: Path, config: TwoTowerConfig) -> dict[str, Any]:
    """Write the JSON files beside the trainer's checkpoints; returns the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FILES["encoder"]).write_text(result.catalogue.encoder.to_json())
    (folder / FILES["config"]).write_text(json.dumps(config.to_dict(), indent=2))
    (folder / FILES["history"]).write_text(json.dumps(result.history, indent=1))
    evaluation = dict(result.evaluation)
    ranker = evaluation.pop("ranker_model", None)
    if ranker is not None:  # the second stage's LightGBM text model, in JSON
        (folder / FILES[SECOND_STAGE]).write_text(ranker)
    (folder / FILES["test_metrics"]).write_text(json.dumps(evaluation, indent=1))
    model = result.evaluation["all_users"][MODEL]
    bounds = result.evaluation.get("intervals", {}).get("all_users", {}).get(MODEL, {})
    return {
        "model": MODEL_NAME,
        "epochs": len(result.history),
        "least_squares_sweeps": len(result.sweeps),
        "best_epoch": result.best_epoch,
        "stopped_because": result.stopped_because,
        "test": {name: model[name] for name in model if "@" in name},
        "interval": {
            f"{name}_{side}": value
            for name, (low, high) in bounds.items()
            for side, value in (("low", low), ("high", high))
        },
        "verdict": result.evaluation.get("comparison", {}).get("verdict"),
        "target": "recommendations",
        "label_distribution": result.label_distribution.to_dict("records"),
    }


def load_recommender(folder: Path) -> tuple[TwoTowerRecommender, RecsysEncoder, TwoTowerConfig]:
    """Model (best weights), encoder and config from a run folder; names what is missing."""
    missing = [
        name for name in ("checkpoint", "encoder", "config") if not (folder / FILES[name]).is_file()
    ]
    if missing:
        raise CheckpointError(
            f"{folder} lacks {', '.join(FILES[m] for m in missing)}; the run did not finish."
        )
    checkpoint = load_checkpoint(folder / FILES["checkpoint"])
    stored = json.loads((folder / FILES["config"]).read_text())
    config = recsys_configs(stored, partial=False)[0]  # earlier versions stored both in one
    try:
        encoder = RecsysEncoder.from_json((folder / FILES["encoder"]).read_text())
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{folder / FILES['encoder']} is not readable: {error}") from None
    meta = checkpoint.meta
    if config.id_embeddings and "items" not in meta:
        raise CheckpointError(
            f"{checkpoint.path} was trained by an earlier Trendlab with one-hot identity "
            "features, which this version replaced by ID embeddings; train the run again."
        )
    model = TwoTowerRecommender(
        config, meta["user_dim"], meta["item_dim"], meta.get("users", 0), meta.get("items", 0)
    )
    try:
        model.load_state_dict(checkpoint.state_dict)
    except RuntimeError as error:
        raise CheckpointError(f"{checkpoint.path} does not fit its config: {error}") from None
    return model.eval(), encoder, config
