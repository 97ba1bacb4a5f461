"""The two-tower model's id tables fitted by alternating least squares (objective
``implicit_als``): implicit-feedback matrix factorisation (iALS: Hu et al. 2008, with the
frequency-scaled regularisation of Rendle et al. 2021) solved in closed form, one sweep at a
time, before the trainer's gradient epochs fit the profile towers on what the ids leave.

A sweep solves every user's vector from their training items (the model's own
least-squares pooling, ``TwoTowerRecommender.pool``), then every item's vector from the
users who chose it (``least_squares_rows`` with the roles swapped). The towers' last layers
and the item bias are zeroed first, so the ids alone score while the sweeps run. Validation
NDCG@10 after each sweep decides when to stop, and the best sweep's table is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from scipy import sparse

from core.recsys.model import TwoTowerRecommender, least_squares_rows

Validate = Callable[[TwoTowerRecommender], dict[str, float]]


@torch.no_grad()
def silence_towers(model: TwoTowerRecommender) -> None:
    """Zero the towers' output layers, the item bias and the user id table: the model then
    scores with the history's id part alone (and its towers start learning from 0)."""
    for tower in (model.user_tower, model.item_tower):
        tower[-1].weight.zero_()
        tower[-1].bias.zero_()
    model.user_ids.weight.zero_()
    if model.bias:
        model.item_bias.weight.zero_()


@torch.no_grad()
def fit_id_tables(
    model: TwoTowerRecommender,
    history: sparse.csr_matrix,
    *,
    sweeps: int,
    validate: Validate,
    monitor: str,
    patience: int = 2,
    report: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[list[dict[str, float]], float]:
    """Alternate user and item solves on the (users, items) training ``history`` for at most
    ``sweeps`` sweeps, stopping after ``patience`` sweeps without a better ``monitor``
    (a key of ``validate``'s figures). Leaves the best sweep's item table in the model;
    returns one record per sweep and the best figure."""
    if model.config.history_pooling != "least_squares":
        raise ValueError("implicit_als fits least-squares pooling (history_pooling)")
    say = report or (lambda _: None)
    silence_towers(model)
    config, table = model.config, model.item_ids.weight
    user_items = _flat(history)
    item_users = _flat(history.T.tocsr())
    records: list[dict[str, float]] = []
    best, best_table, since = -np.inf, table.detach().clone(), 0
    for sweep in range(1, sweeps + 1):
        if should_stop is not None and should_stop():
            break
        started = time.perf_counter()
        users = model.pool(*user_items)  # (users, id_dim)
        table.copy_(
            least_squares_rows(
                users, *item_users, gravity=config.pooling_gravity, l2=config.pooling_l2
            )
        )
        figures = validate(model)
        value = figures[monitor]
        record = {"sweep": float(sweep), **{f"val/{k}": v for k, v in figures.items()}}
        record["seconds"] = time.perf_counter() - started
        records.append(record)
        say(f"least-squares sweep {sweep}/{sweeps}: validation {monitor} {value:.4f}")
        if value > best:
            best, best_table, since = value, table.detach().clone(), 0
        else:
            since += 1
            if since >= patience:
                break
    table.copy_(best_table)
    return records, float(best)


def _flat(matrix: sparse.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """A CSR matrix's column ids and row offsets, as ``least_squares_rows`` reads rows."""
    return (
        torch.from_numpy(matrix.indices.astype(np.int64)),
        torch.from_numpy(matrix.indptr[:-1].astype(np.int64)),
    )
