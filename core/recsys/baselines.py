"""Recommenders the two-tower model is measured against (the content engine it falls back to
is ``core.recsys.content``). Each scores every item for some users: ``scores(user_indices)
-> (users, items)``, a dense block for the users asked (callers ask in batches); what they
learn from is a sparse (users, items) matrix (scipy), never a dense one.

- popularity: the item's count of relevant training interactions (the same for everyone);
- item-kNN: cosine similarity between items' columns of the binary user x item matrix of
  training interactions, shrunk (dot / (|i| |j| + shrinkage)), each item keeping its
  ``neighbours`` nearest (computed in blocks of rows, kept sparse); a user's score for an
  item is the summed similarity to the items they interacted with;
- EASE (Steck, 2019): the closed-form item-item regression B = I - P / diag(P), P = (X^T X
  + lambda I)^-1, zero diagonal; scores X_u B. The one engine with dense items x items
  arrays (float32; every lambda tried from one eigendecomposition); above
  ``ease_item_limit()`` items (computed from its memory budget) ``SparseEASE`` takes its
  place: each item's weights on its 200 most co-purchased items only;
- BPR: matrix factorisation (64 factors) trained with the Bayesian personalised ranking loss
  on (user, interacted item, random other item) triples as RecBole trains it (Adam at 0.001,
  batches of 2,048, no weight decay), to convergence: up to 300 epochs, stopped when a
  ``validate`` callback's figure (validation NDCG@10) has not improved for 10 epochs, the best
  kept.

``core.recsys.tuning`` tunes item-kNN's neighbours and shrinkage and EASE's lambda on
validation NDCG@10, as the two-tower model is tuned (each engine's ``tune`` in
``core.recsys.engines``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import scipy.linalg
import torch
from scipy import sparse

from core.memory import available_memory
from core.recsys.data import contains, seen_keys

BLOCK_CELLS = 1 << 22
"""Cells of a dense block a baseline fills at once (4M float32: 16 MB): item-kNN's similarity
rows are computed in blocks of this size, so memory never holds items x items."""


def interaction_matrix(
    pairs: pd.DataFrame, user_index: pd.Index, item_index: pd.Index
) -> sparse.csr_matrix:
    """Binary sparse (users, items) matrix of the given (user_id, item_id) rows."""
    rows = user_index.get_indexer(pairs["user_id"])
    columns = item_index.get_indexer(pairs["item_id"])
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, columns)),
        shape=(len(user_index), len(item_index)),
    )
    matrix.data[:] = 1.0  # a repeated pair counts once
    return matrix


def _rows(matrix: sparse.csr_matrix, users: np.ndarray) -> sparse.csr_matrix:
    return matrix[np.asarray(users)]


class Popularity:
    def __init__(self, matrix: sparse.csr_matrix) -> None:
        self.counts = np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()

    def scores(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.counts, (len(users), 1))


class ItemKNN:
    """Item-item cosine neighbours: a sparse (items, items) matrix with at most
    ``neighbours`` non-zeros per row. ``fewer(n)`` keeps each item's ``n`` best from the same
    computation, so tuning the neighbour count computes the similarities once."""

    def __init__(
        self,
        matrix: sparse.csr_matrix,
        neighbours: int = 50,
        shrinkage: float = 0.0,
        *,
        ranked: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.matrix = sparse.csr_matrix(matrix, dtype=np.float32)
        self.neighbours, self.shrinkage = int(neighbours), float(shrinkage)
        self.ranked = ranked if ranked is not None else nearest(self.matrix, neighbours, shrinkage)
        chosen, values = self.ranked
        items, keep = len(chosen), min(self.neighbours, chosen.shape[1])
        self.similarity = sparse.csr_matrix(
            (
                values[:, :keep].ravel(),
                (np.repeat(np.arange(items), keep), chosen[:, :keep].ravel()),
            ),
            shape=(items, items),
        )
        self.similarity.eliminate_zeros()

    def fewer(self, neighbours: int) -> ItemKNN:
        """The same similarities, each item keeping its ``neighbours`` best (at most as many
        as this one keeps)."""
        return ItemKNN(
            self.matrix, min(neighbours, self.neighbours), self.shrinkage, ranked=self.ranked
        )

    def scores(self, users: np.ndarray, history: sparse.csr_matrix | None = None) -> np.ndarray:
        """Scores from the users' rows of ``history`` (default: the training matrix)."""
        rows = _rows(self.matrix if history is None else history, users)
        return np.asarray((rows @ self.similarity.T).toarray())


def nearest(
    matrix: sparse.csr_matrix, neighbours: int, shrinkage: float, *, cosine: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's ``neighbours`` most similar other items, best first (ties to the lower
    index): (items, k) indices and their shrunk cosine similarities, dot / (|i| |j| +
    shrinkage) (with ``cosine`` False the dot products themselves: co-occurrence counts of a
    binary matrix), computed in blocks of ``BLOCK_CELLS`` so memory never holds items x
    items. Rows with fewer such items end in zeros."""
    items = matrix.shape[1]
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
    if not cosine:
        norms, shrinkage = np.ones_like(norms), 0.0
    by_item = matrix.T.tocsr()
    keep = min(neighbours, max(items - 1, 0))
    block = max(1, min(1024, BLOCK_CELLS // max(items, 1)))
    chosen = np.zeros((items, keep), dtype=np.int64)
    values = np.zeros((items, keep), dtype=np.float32)
    if keep == 0:
        return chosen, values
    for start in range(0, items, block):
        stop = min(start + block, items)
        similarity = (by_item[start:stop] @ matrix).toarray()  # (block, items)
        similarity /= np.maximum(np.outer(norms[start:stop], norms) + shrinkage, 1e-12)
        similarity[np.arange(stop - start), np.arange(start, stop)] = 0.0
        wanted = similarity > 0
        if keep < items - 1:  # only the top few (and their ties) are sorted
            part = np.argpartition(-similarity, keep, axis=1)[:, : keep + 1]
            threshold = np.take_along_axis(similarity, part, axis=1).min(axis=1)
            wanted &= similarity >= threshold[:, None]
        rows, columns = np.nonzero(wanted)
        found = similarity[rows, columns]
        order = np.lexsort((columns, -found, rows))  # per row: best first, ties to lower index
        rows, columns, found = rows[order], columns[order], found[order]
        place = np.arange(len(rows)) - np.searchsorted(rows, rows)  # rank within its row
        take = place < keep
        chosen[start + rows[take], place[take]] = columns[take]
        values[start + rows[take], place[take]] = found[take]
    return chosen, values


EASE_BUDGET = 4 << 30
"""Bytes EASE may hold (at most half the memory available when it starts): its Gram
matrix's eigenvectors, the weights kept, the weights tried and one scaled copy, each a dense
float32 items x items array (``EASE_ARRAYS`` x 4 x items^2 bytes)."""
EASE_ARRAYS = 4


def ease_item_limit(available: int | None = None) -> int:
    """Largest catalogue EASE is fitted for within ``EASE_BUDGET`` (or half of ``available``
    bytes when that is less): 16,384 items at 4 GiB."""
    budget = EASE_BUDGET if available is None else min(EASE_BUDGET, available // 2)
    return int(np.sqrt(budget / (EASE_ARRAYS * 4)))


class EASE:
    """Embarrassingly shallow autoencoder (Steck, 2019): closed-form item-item weights
    B = I - P / diag(P) with P = (X^T X + lambda I)^-1, in float32.

    ``EASE(matrix, lambda)`` inverts once; ``EASE.path(matrix, lambdas)`` fits every lambda
    from one eigendecomposition of the Gram matrix, G = Q diag(w) Q^T, so each P is
    Q diag(1 / (w + lambda)) Q^T: a product, not an inverse (on the online-retail log's 3,659
    items the decomposition takes about as long as 3 inverses, each further lambda a fifth of
    one)."""

    def __init__(
        self,
        matrix: sparse.csr_matrix,
        regularisation: float = 100.0,
        *,
        weights: np.ndarray | None = None,
    ) -> None:
        self.matrix = sparse.csr_matrix(matrix, dtype=np.float32)
        self.regularisation = float(regularisation)
        if weights is None:
            _check_catalogue(matrix.shape[1])
            gram = _gram(self.matrix)
            gram[np.diag_indices_from(gram)] += regularisation
            weights = np.linalg.inv(gram)
            del gram
            _normalise(weights)
        self.weights = weights

    @classmethod
    def path(cls, matrix: sparse.csr_matrix, lambdas: Sequence[float]) -> Iterator[EASE]:
        """EASE at each of ``lambdas`` in turn, from one eigendecomposition (each model is
        built when asked for, so a caller keeping the best holds two weight arrays)."""
        _check_catalogue(matrix.shape[1])
        matrix = sparse.csr_matrix(matrix, dtype=np.float32)
        values, vectors = scipy.linalg.eigh(
            _gram(matrix), driver="evd", overwrite_a=True, check_finite=False
        )
        values = np.maximum(values, 0.0)  # a PSD matrix's round-off below 0
        for regularisation in lambdas:
            scaled = vectors / (values + np.float32(regularisation))[None, :]
            weights = scaled @ vectors.T  # (items, items): the inverse of G + lambda I
            del scaled
            _normalise(weights)
            yield cls(matrix, regularisation, weights=weights)

    def scores(self, users: np.ndarray, history: sparse.csr_matrix | None = None) -> np.ndarray:
        """Scores from the users' rows of ``history`` (default: the training matrix)."""
        rows = _rows(self.matrix if history is None else history, users)
        return np.asarray(rows @ self.weights)


class SparseEASE:
    """EASE for catalogues above the dense limit: each item's column of B is EASE's ridge
    regression restricted to the item's ``neighbours`` most co-purchased items N(j),
    B[N, j] = (G[N, N] + lambda I)^-1 G[N, j], and 0 elsewhere. G = X^T X is never held
    whole: it is pruned to each item's ``PRUNE`` x ``neighbours`` largest co-occurrences
    (computed in blocks, as item-kNN's similarities; kept where either item keeps the other)
    plus its diagonal, so the solves read counts that are exact or, far outside both items'
    lists, 0. With every other item as a neighbour it is EASE exactly. Memory: the pruned
    Gram matrix and items x ``neighbours`` weights; time: one small solve per item, in
    batches."""

    BATCH = 256
    PRUNE = 2

    def __init__(
        self,
        matrix: sparse.csr_matrix,
        regularisation: float = 100.0,
        neighbours: int = 200,
        *,
        weights: sparse.csr_matrix | None = None,
    ) -> None:
        self.matrix = sparse.csr_matrix(matrix, dtype=np.float32)
        self.regularisation, self.neighbours = float(regularisation), int(neighbours)
        if weights is None:
            weights = self._solve(self.matrix, [regularisation], neighbours)[0]
        self.weights = weights

    @classmethod
    def path(
        cls, matrix: sparse.csr_matrix, lambdas: Sequence[float], neighbours: int = 200
    ) -> Iterator[SparseEASE]:
        """SparseEASE at each of ``lambdas``: the supports and the pruned Gram matrix are
        computed once and every lambda solved from the same small systems."""
        matrix = sparse.csr_matrix(matrix, dtype=np.float32)
        for value, weights in zip(lambdas, cls._solve(matrix, lambdas, neighbours), strict=True):
            yield cls(matrix, value, neighbours, weights=weights)

    @classmethod
    def _solve(
        cls, matrix: sparse.csr_matrix, lambdas: Sequence[float], neighbours: int
    ) -> list[sparse.csr_matrix]:
        items = matrix.shape[1]
        listed, counts = nearest(matrix, cls.PRUNE * neighbours, 0.0, cosine=False)
        pruned = sparse.csr_matrix(
            (
                counts.ravel().astype(np.float64),
                (np.repeat(np.arange(items), listed.shape[1]), listed.ravel()),
            ),
            shape=(items, items),
        )
        pruned.eliminate_zeros()
        diagonal = np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel().astype(np.float64)
        gram = (pruned.maximum(pruned.T) + sparse.diags(diagonal)).tocsr()
        chosen = [
            np.sort(row[value > 0][:neighbours]) for row, value in zip(listed, counts, strict=True)
        ]
        del listed, counts, pruned
        width = max((len(c) for c in chosen), default=0)
        rows = [np.concatenate(chosen) if chosen else np.zeros(0, int)]
        columns = np.repeat(np.arange(items), [len(c) for c in chosen])
        values: list[list[np.ndarray]] = [[] for _ in lambdas]
        for start in range(0, items, cls.BATCH):
            batch = range(start, min(start + cls.BATCH, items))
            systems = np.zeros((len(batch), width, width))
            targets = np.zeros((len(batch), width, 1))
            for slot, j in enumerate(batch):
                support = chosen[j]
                systems[slot, : len(support), : len(support)] = gram[support][:, support].toarray()
                targets[slot, : len(support), 0] = gram[support, j].toarray().ravel()
            diagonal = systems[:, np.arange(width), np.arange(width)].copy()
            for found, value in zip(values, lambdas, strict=True):
                systems[:, np.arange(width), np.arange(width)] = diagonal + value
                solved = np.linalg.solve(systems, targets)[..., 0]  # (batch, width)
                found.extend(solved[slot, : len(chosen[j])] for slot, j in enumerate(batch))
        return [
            sparse.csr_matrix(
                (
                    np.concatenate(found).astype(np.float32) if found else np.zeros(0, np.float32),
                    (rows[0], columns),
                ),
                shape=(items, items),
            )
            for found in values
        ]

    def scores(self, users: np.ndarray, history: sparse.csr_matrix | None = None) -> np.ndarray:
        """Scores from the users' rows of ``history`` (default: the training matrix)."""
        rows = _rows(self.matrix if history is None else history, users)
        return np.asarray((rows @ self.weights).toarray())


def _check_catalogue(items: int) -> None:
    limit = ease_item_limit(available_memory())
    if items > limit:
        raise ValueError(
            f"EASE needs dense {items:,} x {items:,} float32 arrays "
            f"({EASE_ARRAYS * 4 * items**2 / 2**30:.1f} GiB); within its budget it fits "
            f"catalogues of at most {limit:,} items"
        )


def _gram(matrix: sparse.csr_matrix) -> np.ndarray:
    """X^T X as a dense float32 (items, items) array."""
    return (matrix.T @ matrix).toarray().astype(np.float32, copy=False)


def _normalise(inverse: np.ndarray) -> None:
    """P -> B = -P / diag(P) with a zero diagonal, in place."""
    diagonal = -np.diag(inverse).copy()
    inverse /= diagonal[None, :]
    inverse[np.diag_indices_from(inverse)] = 0.0


class BPR:
    """Matrix factorisation trained with the BPR pairwise loss (Rendle et al., 2009), the way
    RecBole 1.2.1 trains its BPR: 64 factors with Xavier-normal initial values, Adam at 0.001
    without weight decay, batches of 2,048 (user, interacted item, uniform other item)
    triples, validation every epoch, stopping after ``patience`` epochs without progress (the
    best kept), at most 300 epochs. Triples whose other item the user has met are dropped."""

    def __init__(
        self,
        matrix: sparse.csr_matrix,
        *,
        factors: int = 64,
        epochs: int = 300,
        learning_rate: float = 0.001,
        regularisation: float = 0.0,
        batch_size: int = 2048,
        patience: int = 10,
        seed: int = 0,
        validate: Callable[[Callable[[np.ndarray], np.ndarray]], float] | None = None,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        users, items = matrix.shape
        self.settings = {"learning_rate": learning_rate, "regularisation": regularisation}
        self.user_factors = torch.nn.Parameter(torch.empty(users, factors))
        self.item_factors = torch.nn.Parameter(torch.empty(items, factors))
        for table in (self.user_factors, self.item_factors):
            torch.nn.init.xavier_normal_(table, generator=generator)
        optimizer = torch.optim.Adam([self.user_factors, self.item_factors], lr=learning_rate)
        coo = sparse.csr_matrix(matrix).tocoo()
        user_ids = torch.from_numpy(coo.row.astype(np.int64))
        item_ids = torch.from_numpy(coo.col.astype(np.int64))
        keys = seen_keys(sparse.csr_matrix(matrix))
        self.best, best_state, waited = -np.inf, None, 0
        self.epochs = self.best_epoch = 0
        for epoch in range(1, epochs + 1):
            order = torch.randperm(len(user_ids), generator=generator)
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                u, positive = user_ids[batch], item_ids[batch]
                negative = torch.randint(items, (len(batch),), generator=generator)
                keep = torch.from_numpy(~contains(keys, u.numpy(), negative.numpy(), items))
                u, positive, negative = u[keep], positive[keep], negative[keep]
                user, liked, other = (
                    self.user_factors[u],
                    self.item_factors[positive],
                    self.item_factors[negative],
                )
                difference = (user * (liked - other)).sum(-1)
                loss = -torch.nn.functional.logsigmoid(difference).mean()
                if regularisation:
                    squares = user.pow(2).sum() + liked.pow(2).sum() + other.pow(2).sum()
                    loss = loss + regularisation * squares / len(u)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            self.epochs = epoch
            if validate is None:
                continue
            figure = validate(self.scores)
            if figure > self.best:
                self.best, waited, self.best_epoch = figure, 0, epoch
                best_state = (
                    self.user_factors.detach().clone(),
                    self.item_factors.detach().clone(),
                )
            else:
                waited += 1
                if waited >= patience:
                    break
        if best_state is not None:
            self.user_factors.data, self.item_factors.data = best_state
        else:
            self.best_epoch = self.epochs

    @torch.no_grad()
    def scores(self, users: np.ndarray) -> np.ndarray:
        return (self.user_factors[torch.as_tensor(users)] @ self.item_factors.T).numpy()
