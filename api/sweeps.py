"""Hyperparameter sweeps: start one on this server's job manager (what
`trendlab sweep --via-server` sends) and follow it by id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from api.schemas import MAX_RUN_ID, SweepRequest
from api.shared import Context, plain, short
from services.access import ReadOnlyError
from services.database import StorageError
from services.jobs.manager import start_job_manager
from services.registry import TRAINABLE
from services.sweeps.space import SweepError, suggested_space
from services.sweeps.study import start_sweep as start
from services.sweeps.study import sweep_info

router = APIRouter()


@router.get("/sweeps/{sweep_id}")
def sweep(ctx: Context, sweep_id: Annotated[int, Path(ge=1, le=MAX_RUN_ID)]) -> dict[str, Any]:
    home, engine = ctx.home, ctx.engine
    found = sweep_info(engine=engine, home=home, sweep_id=sweep_id)
    if found is None:
        raise HTTPException(404, f"No sweep {sweep_id}.")
    return plain(found.to_dict())


@router.post("/sweeps", status_code=201)
def start_sweep(ctx: Context, request: SweepRequest) -> dict[str, int]:
    """Start a sweep that this server's job manager drives (403 when read-only)."""
    home = ctx.home
    spec = TRAINABLE.get(request.model)
    if spec is None:
        raise HTTPException(422, "Unknown model.")
    try:
        sweep_id = start(
            start_job_manager(home),
            model_name=request.model,
            dataset_name=request.dataset,
            space=request.space or suggested_space(request.model),
            trials=request.trials,
            parallel=request.parallel,
            training=spec.training_config_class.from_dict(request.training, partial=True),
            model_config=spec.config_class.from_dict(request.architecture, partial=True),
        )
    except ReadOnlyError as error:
        raise HTTPException(403, short(str(error))) from None
    except (SweepError, ValueError) as error:  # a wrong space or config (ConfigError)
        raise HTTPException(422, short(str(error))) from None
    except StorageError as error:  # an unknown dataset
        raise HTTPException(404, short(str(error))) from None
    return {"sweep_id": sweep_id}
