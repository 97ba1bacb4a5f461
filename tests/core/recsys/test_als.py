"""Least-squares pooling and the alternating least-squares fit of the id tables, against
direct solves of the iALS normal equations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse

from core.recsys.als import fit_id_tables
from core.recsys.config import TwoTowerConfig
from core.recsys.model import TwoTowerRecommender, least_squares_rows

GRAVITY, L2 = 0.1, 0.01


def direct(factors: np.ndarray, rows: list[np.ndarray]) -> np.ndarray:
    """The oracle: each row's d x d normal equations solved one by one."""
    count, width = factors.shape
    gram = GRAVITY * factors.T @ factors
    out = np.zeros((len(rows), width))
    for r, read in enumerate(rows):
        if len(read):
            shrink = L2 * (len(read) + GRAVITY * count)
            system = factors[read].T @ factors[read] + gram + shrink * np.eye(width)
            out[r] = np.linalg.solve(system, factors[read].sum(0))
    return out


def flat(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    sizes = np.array([len(r) for r in rows])
    indices = np.concatenate(rows).astype(np.int64)
    return torch.from_numpy(indices), torch.from_numpy(np.cumsum(sizes) - sizes)


@pytest.mark.parametrize("block", [1, 12, 1 << 14])
def test_rows_shorter_and_longer_than_the_width_match_the_direct_solve(block) -> None:
    """Rows under d items take the Woodbury path, the others the direct one; an empty row
    is 0; groups of any size give the same answer."""
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(40, 6))
    rows = [rng.choice(40, size=n, replace=False) for n in (3, 0, 1, 6, 9, 2, 25, 5)]
    solved = least_squares_rows(
        torch.from_numpy(factors), *flat(rows), gravity=GRAVITY, l2=L2, block=block
    )
    np.testing.assert_allclose(solved.numpy(), direct(factors, rows), rtol=1e-8, atol=1e-10)
    assert not solved[1].any()


def test_a_sweep_solves_users_then_items_as_ials_does() -> None:
    """One sweep: users from the starting item table, then items from those users (the
    oracle's two direct half steps); the towers and the item bias are silenced first."""
    rng = np.random.default_rng(1)
    history = sparse.random(12, 9, density=0.35, random_state=3, format="csr")
    history.data[:] = 1.0
    config = TwoTowerConfig(
        hidden_dims=[4], embedding_dim=3, id_dim=4, pooling_gravity=GRAVITY, pooling_l2=L2
    )
    model = TwoTowerRecommender(config, 5, 5, users=12, items=9).double()
    start = rng.normal(size=(9, 4))
    with torch.no_grad():
        model.item_ids.weight.copy_(torch.from_numpy(start))
    records, best = fit_id_tables(
        model, history, sweeps=1, validate=lambda _: {"ndcg@10": 0.5}, monitor="ndcg@10"
    )
    users = direct(start, [history[u].indices for u in range(12)])
    columns = history.tocsc()
    items = direct(users, [columns[:, i].indices for i in range(9)])
    np.testing.assert_allclose(model.item_ids.weight.detach().numpy(), items, rtol=1e-8)
    assert not model.item_tower[-1].weight.any() and not model.item_bias.weight.any()
    assert len(records) == 1 and best == 0.5


def test_sweeps_stop_after_patience_without_progress_and_keep_the_best_table() -> None:
    history = sparse.random(20, 15, density=0.3, random_state=4, format="csr")
    history.data[:] = 1.0
    model = TwoTowerRecommender(TwoTowerConfig(hidden_dims=[4], id_dim=4), 5, 5, 20, 15)
    figures = iter([0.2, 0.4, 0.3, 0.35, 0.9])
    tables = []

    def validate(network: TwoTowerRecommender) -> dict[str, float]:
        tables.append(network.item_ids.weight.detach().clone())
        return {"ndcg@10": next(figures)}

    records, best = fit_id_tables(
        model, history, sweeps=5, validate=validate, monitor="ndcg@10", patience=2
    )
    assert len(records) == 4 and best == 0.4, "two sweeps without progress after the 2nd"
    torch.testing.assert_close(model.item_ids.weight, tables[1])


def test_mean_pooling_is_refused() -> None:
    model = TwoTowerRecommender(TwoTowerConfig(history_pooling="mean"), 5, 5, 3, 3)
    with pytest.raises(ValueError, match="least-squares pooling"):
        fit_id_tables(
            model,
            sparse.csr_matrix((3, 3)),
            sweeps=1,
            validate=lambda _: {"n": 0.0},
            monitor="n",
        )


def test_the_pooling_reuses_the_spectrum_until_the_item_table_changes() -> None:
    """Serving pays the item table's eigendecomposition once; a changed table (a sweep, a
    loaded checkpoint) is never pooled with the old one."""
    config = TwoTowerConfig(hidden_dims=[4], id_dim=4, pooling_gravity=GRAVITY, pooling_l2=L2)
    model = TwoTowerRecommender(config, 5, 5, users=3, items=9).double().eval()
    rows = [np.array([0, 3, 5]), np.array([2])]
    history, offsets = flat(rows)
    with torch.no_grad():
        first = model.pool(history, offsets)
        assert model._spectrum(model.item_ids.weight, GRAVITY) is model._spectrum_cache[1]
        model.item_ids.weight.mul_(2.0)
        again = model.pool(history, offsets)
    expected = direct(model.item_ids.weight.detach().numpy(), rows)
    np.testing.assert_allclose(again.numpy(), expected, rtol=1e-8)
    assert not np.allclose(first.numpy(), again.numpy())
