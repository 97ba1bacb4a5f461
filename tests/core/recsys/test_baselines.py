"""The sparse baselines against plain dense computations, and the approximate item index."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from core.recsys import baselines
from core.recsys.baselines import BPR, EASE, ItemKNN, Popularity
from core.recsys.serving import ItemIndex, search_kind


@pytest.fixture
def matrix() -> sparse.csr_matrix:
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 25)) < rng.random(25) * 0.5).astype(np.float32)
    return sparse.csr_matrix(dense)


def test_item_knn_in_blocks_matches_the_dense_formula(matrix, monkeypatch) -> None:
    monkeypatch.setattr(baselines, "BLOCK_CELLS", 7 * 25)  # blocks of 7 items
    dense = matrix.toarray()
    norms = np.linalg.norm(dense, axis=0)
    similarity = dense.T @ dense / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(similarity, 0.0)
    for row in similarity:  # keep each item's 5 nearest neighbours, ties to the lower index
        row[np.argsort(-row, kind="stable")[5:]] = 0.0
    knn = ItemKNN(matrix, neighbours=5)
    np.testing.assert_allclose(knn.similarity.toarray(), similarity, rtol=1e-5, atol=1e-7)
    users = np.array([0, 3, 39])
    np.testing.assert_allclose(knn.scores(users), dense[users] @ similarity.T, rtol=1e-5)
    np.testing.assert_allclose(Popularity(matrix).scores(users)[1], dense.sum(axis=0))


def test_item_knn_shrinkage_divides_by_the_norms_plus_it(matrix) -> None:
    dense = matrix.toarray()
    norms = np.linalg.norm(dense, axis=0)
    shrunk = dense.T @ dense / (np.outer(norms, norms) + 10.0)
    np.fill_diagonal(shrunk, 0.0)
    knn = ItemKNN(matrix, neighbours=24, shrinkage=10.0)
    np.testing.assert_allclose(knn.similarity.toarray(), shrunk, rtol=1e-5, atol=1e-7)


def test_ease_matches_its_closed_form_and_reads_the_history_it_is_given(matrix) -> None:
    """Steck (2019): B = I - P diag(1 / diag(P)), P = (X^T X + lambda I)^-1, diag(B) = 0;
    scores X_u B, for the history rows given at scoring time."""
    dense = matrix.toarray().astype(np.float64)
    inverse = np.linalg.inv(dense.T @ dense + 5.0 * np.eye(25))
    weights = np.eye(25) - inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    ease = EASE(matrix, regularisation=5.0)
    np.testing.assert_allclose(ease.weights, weights, rtol=1e-4, atol=1e-5)
    other = sparse.csr_matrix(np.eye(40, 25, dtype=np.float32))
    np.testing.assert_allclose(ease.scores(np.array([2]), other)[0], weights[2], atol=1e-5)


def test_ease_on_every_lambda_from_one_eigendecomposition_equals_the_direct_inverse() -> None:
    """Issue 38: the lambda grid is fitted from one factorisation of the Gram matrix."""
    rng = np.random.default_rng(4)
    dense = (rng.random((300, 120)) < rng.random(120) * 0.3).astype(np.float32)
    lambdas = (20.0, 100.0, 500.0)  # the grid's range (float32: lambda 1 differs by 1e-5)
    found = list(EASE.path(sparse.csr_matrix(dense), lambdas))
    gram = dense.astype(np.float64).T @ dense
    for ease, value in zip(found, lambdas, strict=True):
        inverse = np.linalg.inv(gram + value * np.eye(120))
        weights = np.eye(120) - inverse / np.diag(inverse)[None, :]
        np.fill_diagonal(weights, 0.0)
        assert ease.regularisation == value and ease.weights.dtype == np.float32
        np.testing.assert_allclose(ease.weights, weights, atol=1e-5)
        np.testing.assert_allclose(
            EASE(sparse.csr_matrix(dense), value).weights, weights, atol=1e-5
        )


def test_ease_is_left_out_above_the_catalogue_its_memory_budget_fits(matrix, monkeypatch) -> None:
    assert baselines.ease_item_limit() == 16_384  # 4 arrays of 4 x items^2 bytes in 4 GiB
    assert baselines.ease_item_limit(available=2 << 30) == 8_192  # half of what is free
    monkeypatch.setattr(baselines, "EASE_BUDGET", 4 * 4 * 10**2)
    with pytest.raises(ValueError, match="at most 10 items"):
        EASE(matrix)
    with pytest.raises(ValueError, match="at most 10 items"):
        next(EASE.path(matrix, [1.0]))


def test_item_knn_keeps_at_most_k_neighbours_per_item_in_a_sparse_matrix(matrix) -> None:
    widest = ItemKNN(matrix, neighbours=8, shrinkage=2.0)
    for k in (1, 3, 8):
        knn = widest.fewer(k)
        assert sparse.issparse(knn.similarity)
        assert np.diff(knn.similarity.indptr).max() <= k
        direct = ItemKNN(matrix, neighbours=k, shrinkage=2.0)
        np.testing.assert_allclose(knn.similarity.toarray(), direct.similarity.toarray())


def test_bpr_learns_from_a_sparse_matrix_and_ranks_seen_items_up(matrix) -> None:
    scores = BPR(matrix, epochs=30, seed=1).scores(np.arange(40))
    dense = matrix.toarray() > 0
    seen, unseen = scores[dense].mean(), scores[~dense].mean()
    assert scores.shape == (40, 25) and seen > unseen


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_search_finds_most_of_the_exact_top_10(kind) -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(20, 16))
    embeddings = centres[rng.integers(20, size=3000)] + 0.3 * rng.normal(size=(3000, 16))
    # popular items grow longer: norms that vary, as a trained model's do (a graph walk over
    # Euclidean-transformed items found 0.3 of the top 10 on such items)
    embeddings = (embeddings * rng.lognormal(0, 0.3, 3000)[:, None]).astype(np.float32)
    allowed = rng.random(3000) > 0.05
    exact, approximate = ItemIndex(embeddings), ItemIndex(embeddings, kind=kind, probes=8)
    found = []
    for query in rng.normal(size=(30, 16)):
        truth = set(exact.search(query, 10, allowed)[0].tolist())
        indices, scores = approximate.search(query, 10, allowed)
        assert len(indices) == 10 and allowed[indices].all() and np.all(np.diff(scores) <= 1e-6)
        found.append(len(truth & set(indices.tolist())) / 10)
    assert np.mean(found) >= 0.9
    assert search_kind("auto", 99_999) == "exact" and search_kind("auto", 100_000) == "hnsw"
    with pytest.raises(ValueError, match="is not one of"):
        ItemIndex(embeddings, kind="lsh")


def test_sparse_ease_with_every_item_as_a_neighbour_is_ease_and_keeps_k_weights_per_item() -> None:
    """Above the dense limit EASE's columns are solved on each item's most co-purchased
    items; with all of them it is the closed form itself."""
    rng = np.random.default_rng(5)
    dense = (rng.random((300, 60)) < 0.1 + rng.random(60) * 0.3).astype(np.float32)
    matrix = sparse.csr_matrix(dense)
    assert np.all(dense.T @ dense > 0), "every pair co-purchased: all are neighbours"
    exact = EASE(matrix, 50.0).weights
    full = baselines.SparseEASE(matrix, 50.0, neighbours=59)
    np.testing.assert_allclose(full.weights.toarray(), exact, atol=1e-5)
    narrow = baselines.SparseEASE(matrix, 50.0, neighbours=5)
    assert sparse.issparse(narrow.weights)
    assert np.diff(narrow.weights.tocsc().indptr).max() <= 5
    assert np.all(narrow.weights.diagonal() == 0)
    gram = dense.T @ dense
    np.fill_diagonal(gram, -1)
    for item in (0, 17, 42):  # the support is the item's most co-purchased others
        support = np.flatnonzero(narrow.weights[:, item].toarray().ravel())
        assert set(support) <= set(np.argsort(-gram[:, item], kind="stable")[:5])
    users = np.array([1, 2])
    np.testing.assert_allclose(
        narrow.scores(users), dense[users] @ narrow.weights.toarray(), rtol=1e-5
    )
