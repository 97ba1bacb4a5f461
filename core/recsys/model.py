"""The two-tower recommender (seed 004), its history pooling and its training losses.

User and item features each pass an MLP tower ([512, 256] by default; dropout 0.3 after the
first layer, 0.2 after later ones) to a 128-d embedding.

With ID embeddings (the default) each side's embedding gains an id part beside its tower's
output: the item's is a learned embedding of its id; the user's the embedding of their id plus
a pooling of the id embeddings of the items in their history (a flat list of item ids with
offsets, as PyTorch takes sparse inputs). The default pooling is least squares
(``least_squares_rows``): the vector that best scores the history's items 1 and every item
0, iALS's user step, so a user's vector follows their latest history without retraining;
the alternative is the mean (an EmbeddingBag). So u = [tower(user features); e_user +
pool(history); 1], i = [tower(item features); e_item; bias], and the score <u, i> =
<towers> + <id parts> + bias: profiles and ids both count, and each side is still one
vector, so serving and approximate search work as without ids. The ids sit beside the
towers, not inside them: fed through a ReLU tower, id embeddings learned about as slowly
as popularity on MovieLens-shaped data (validation NDCG@10 0.09 against 0.21 beside it,
same epochs). Parameters grow with users + items, never with their product.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from core.dropout import Dropout
from core.recsys.config import TwoTowerConfig


def _tower(input_dim: int, config: TwoTowerConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = input_dim
    for index, hidden in enumerate(config.hidden_dims):
        dropout = config.first_dropout if index == 0 else config.dropout
        layers += [nn.Linear(width, hidden), nn.ReLU(), Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, config.embedding_dim))
    return nn.Sequential(*layers)


ID_INIT_STD = 0.05
"""Standard deviation of the id embeddings at initialisation: small, so the first scores are
near 0 (a sigmoid of 0.5) and the towers and ids start on an equal footing."""


def least_squares_rows(
    factors: torch.Tensor,
    indices: torch.Tensor,
    offsets: torch.Tensor,
    *,
    gravity: float,
    l2: float,
    block: int = 1 << 14,
    spectrum: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Each row's vector x that best scores its items 1 and every item 0, given fixed item
    ``factors`` (N, d): a row reading the n ids in ``indices`` from its offset gets
    argmin sum_read (1 - f.x)^2 + gravity * sum_all (f.x)^2 + l2 (n + gravity N) |x|^2,
    the half step of iALS (Hu et al. 2008) with its frequency-scaled regularisation
    (Rendle et al. 2021), in closed form: (F_r^T F_r + gravity F^T F + s I) x = F_r^T 1.

    In the eigenbasis of gravity F^T F the rest of the system is diagonal, so a row with
    fewer items than d solves an n x n system (the Woodbury identity) instead of d x d;
    longer rows solve theirs directly. Rows go in order of length, in groups padded to
    their longest row, at most ``block`` read items a group. An empty row gets 0.
    ``spectrum``: ``gram_spectrum(factors, gravity)`` computed once for many calls.
    -> (rows, d)."""
    rows, (count, width) = len(offsets), factors.shape
    sizes = torch.diff(offsets, append=offsets.new_tensor([len(indices)]))
    values, basis, rotated = spectrum or gram_spectrum(factors, gravity)
    order = torch.argsort(sizes).tolist()
    lengths = sizes.tolist()
    out = factors.new_zeros(rows, width)
    start = 0
    while start < rows:
        stop = start + 1
        while stop < rows and (stop - start + 1) * lengths[order[stop]] <= block:
            stop += 1
        group = torch.tensor(order[start:stop], device=factors.device)
        longest = lengths[order[stop - 1]]
        start = stop
        within = torch.arange(longest, device=factors.device)
        taken = within[None, :] < sizes[group][:, None]  # (g, L)
        position = (offsets[group][:, None] + within[None, :]).clamp(0, max(len(indices) - 1, 0))
        read = rotated[torch.where(taken, indices[position], count)]  # (g, L, d), pads 0
        rhs = read.sum(1)  # (g, d)
        shrink = l2 * (sizes[group].to(factors.dtype) + gravity * count)
        diagonal = values[None, :] + shrink[:, None]  # (g, d): the system's rest
        if longest < width:  # x = D^-1 b - D^-1 F^T (I + F D^-1 F^T)^-1 F D^-1 b
            scaled = read / diagonal[:, None, :]  # F D^-1 (g, L, d)
            inner = scaled @ read.transpose(1, 2)  # (g, L, L)
            inner += torch.eye(longest, dtype=factors.dtype, device=factors.device)
            first = rhs / diagonal
            pull = torch.cholesky_solve(read @ first[:, :, None], torch.linalg.cholesky(inner))
            solution = first - (scaled.transpose(1, 2) @ pull)[:, :, 0]
        else:
            system = read.transpose(1, 2) @ read + torch.diag_embed(diagonal)  # (g, d, d)
            solution = torch.cholesky_solve(rhs[:, :, None], torch.linalg.cholesky(system))[:, :, 0]
        out[group] = solution @ basis.T
    return out


def gram_spectrum(
    factors: torch.Tensor, gravity: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eigenvalues (d,) and eigenvectors (d, d) of gravity F^T F, and the (N + 1, d) factors
    in that basis with a zero padding row: what every ``least_squares_rows`` call on the
    same factors shares (about 2 N d^2 flops, the bulk of a one-user call)."""
    values, basis = torch.linalg.eigh(gravity * factors.T @ factors)
    rotated = torch.cat([factors @ basis, factors.new_zeros(1, factors.shape[1])])
    return values, basis, rotated


class TwoTowerRecommender(nn.Module):
    def __init__(
        self, config: TwoTowerConfig, user_dim: int, item_dim: int, users: int = 0, items: int = 0
    ) -> None:
        super().__init__()
        self.config = config
        self.user_dim, self.item_dim = user_dim, item_dim
        ids = config.id_dim if config.id_embeddings else 0
        self.user_tower = _tower(user_dim, config)
        self.item_tower = _tower(item_dim, config)
        self.bias = 1 if config.item_bias else 0
        self.output_dim = config.embedding_dim + ids + self.bias
        if config.id_embeddings:
            self.user_ids = nn.Embedding(max(users, 1), ids)
            self.item_ids = nn.Embedding(max(items, 1), ids)
            for table in (self.user_ids, self.item_ids):
                nn.init.normal_(table.weight, std=ID_INIT_STD)
        if config.item_bias:
            self.item_bias = nn.Embedding(max(items, 1), 1)
            nn.init.zeros_(self.item_bias.weight)

    def users(
        self,
        user: torch.Tensor,
        user_index: torch.Tensor | None = None,
        history: torch.Tensor | None = None,
        history_offsets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, Du) features, (B,) ids, a flat (N,) list of history item ids and the (B,)
        offsets where each user's starts -> (B, output_dim) user embeddings: the tower's
        output, the id part, and 1 facing the item bias."""
        parts = [self.user_tower(user)]
        if self.config.id_embeddings:
            parts.append(self.user_ids(user_index) + self.pool(history, history_offsets))
        if self.bias:
            parts.append(parts[0].new_ones(len(user), 1))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def pool(self, history: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """A flat (N,) list of history item ids and the (B,) offsets where each user's
        starts -> (B, id_dim): their mean id embedding, or (``history_pooling``
        least_squares) the vector that best scores them 1 and the rest 0 (see
        ``least_squares_rows``). An empty history is 0."""
        table = self.item_ids.weight
        if self.config.history_pooling == "least_squares":
            gravity = self.config.pooling_gravity
            return least_squares_rows(
                table,
                history,
                offsets,
                gravity=gravity,
                l2=self.config.pooling_l2,
                spectrum=self._spectrum(table, gravity),
            )
        # the mean as sum / count: the bag's own mean mode is slow to differentiate on the CPU
        sizes = torch.diff(offsets, append=offsets.new_tensor([len(history)]))
        bags = F.embedding_bag(history, table, offsets, mode="sum")
        return bags / sizes.clamp_min(1)[:, None]

    def _spectrum(
        self, table: torch.Tensor, gravity: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """The item table's ``gram_spectrum``, kept while the table is unchanged (its
        storage and version counter) and no gradient flows through it: serving and
        evaluation then pay it once, not per request or block of users."""
        if table.requires_grad and torch.is_grad_enabled():
            return None
        key = (table.data_ptr(), table._version, gravity)
        cached = getattr(self, "_spectrum_cache", None)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, gram_spectrum(table.detach(), gravity))
            self._spectrum_cache = cached
        return cached[1]

    def items(self, item: torch.Tensor, item_index: torch.Tensor | None = None) -> torch.Tensor:
        """(B, Di) features and (B,) ids -> (B, output_dim) item embeddings: the tower's
        output, the id embedding, and the item's bias."""
        parts = [self.item_tower(item)]
        if self.config.id_embeddings:
            parts.append(self.item_ids(item_index))
        if self.bias:
            parts.append(self.item_bias(item_index))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def forward(
        self,
        user: torch.Tensor,
        item: torch.Tensor,
        user_index: torch.Tensor | None = None,
        item_index: torch.Tensor | None = None,
        history: torch.Tensor | None = None,
        history_offsets: torch.Tensor | None = None,
        pair_user: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """(G, Du) user and (B, Di) item features and the ids (see ``users`` and ``items``)
        -> logit and score (B,), embeddings (B, E). ``pair_user`` (B,) says which user row
        each pair has, when users are shared (a positive and its negatives); without it
        G = B, row for row. An empty ``pair_user`` scores every user against every item:
        logit and score (G, B), embeddings (G, E) and (B, E)."""
        user_embedding = self.users(user, user_index, history, history_offsets)
        item_embedding = self.items(item, item_index)
        if pair_user is not None and len(pair_user) == 0:
            logit = user_embedding @ item_embedding.T  # (G, B)
        else:
            if pair_user is not None:
                user_embedding = user_embedding[pair_user]
            logit = (user_embedding * item_embedding).sum(-1)
        return {
            "logit": logit,
            "score": torch.sigmoid(logit),
            "user_embedding": user_embedding,
            "item_embedding": item_embedding,
        }


class WeightedBCELoss(nn.Module):
    """Pointwise BCE on soft labels, each pair weighted by |weight| (seed 004)."""

    def forward(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        per_pair = F.binary_cross_entropy_with_logits(
            outputs["logit"], batch["label"], reduction="none"
        )
        weight = batch["weight"].abs()
        loss = (per_pair * weight).sum() / weight.sum().clamp_min(1e-12)
        return loss, {"total": loss.item(), "bce": loss.item()}


class MaskedSoftmaxLoss(nn.Module):
    """Softmax over candidate items of the items held out of each user's history.

    ``outputs["logit"]`` is (users, candidates): every user of the batch against every
    candidate (the whole catalogue, or a sample: see ``core.recsys.batches.UserBatches``).
    The items the user tower read are masked, so the model learns to rank what the user has
    not shown it, which is what evaluation and serving ask of it; a sampled candidate set
    subtracts each candidate's log inclusion probability (the logQ correction). Each user
    weighs 1, shared between their held-out items (the multinomial likelihood of Mult-VAE,
    Liang et al. 2018, with the seed's towers).
    """

    def forward(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        logits = outputs["logit"] - batch["log_q"][None, :]
        visible = torch.zeros_like(logits, dtype=torch.bool)
        visible[batch["visible_rows"], batch["visible_cols"]] = True
        log_p = torch.log_softmax(logits.masked_fill(visible, -1e9), dim=-1)
        rows = batch["target_rows"]
        per_target = log_p[rows, batch["target_cols"]]
        share = torch.bincount(rows, minlength=len(logits)).clamp_min(1).float()[rows]
        loss = -(per_target / share).sum() / len(logits)
        return loss, {"total": loss.item(), "softmax": loss.item()}


class ImplicitSquaredLoss(nn.Module):
    """Squared error on the same masked examples as ``MaskedSoftmaxLoss``: each held-out
    item's score pulled to 1, every other unread candidate's to 0 with weight ``gravity``
    (the implicit-feedback regression of iALS, Hu et al. 2008, Rendle et al. 2021, fitted
    by gradient steps through the towers). Per user, summed over items, mean over users."""

    def __init__(self, gravity: float) -> None:
        super().__init__()
        self.gravity = gravity

    def forward(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        scores = outputs["logit"]
        rows, columns = batch["target_rows"], batch["target_cols"]
        unread = torch.ones_like(scores, dtype=torch.bool)
        unread[batch["visible_rows"], batch["visible_cols"]] = False
        unread[rows, columns] = False
        hits = (1 - scores[rows, columns]).pow(2).sum()
        rest = scores.pow(2).masked_fill(~unread, 0.0).sum()
        loss = (hits + self.gravity * rest) / len(scores)
        return loss, {"total": loss.item(), "squared": loss.item()}


class InBatchSoftmaxLoss(nn.Module):
    """Sampled softmax over the batch's items, with the logQ correction.

    Each positive pair (label > 0) scores its item against every item in the batch; the
    logits subtract log q(item), the item's share of training positives, because popular
    items appear as in-batch negatives more often than uniform sampling would show them.
    Without the correction the model learns to push popular items down (Yi et al., 2019).
    Pairs with label 0 only serve as other rows' negatives.
    """

    def __init__(self, log_q: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("log_q", log_q)

    def forward(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        users, items = outputs["user_embedding"], outputs["item_embedding"]
        logits = users @ items.T - self.log_q[batch["item_index"]][None, :]  # (B, B)
        same_item = batch["item_index"][None, :] == batch["item_index"][:, None]
        logits = logits.masked_fill(same_item & ~torch.eye(len(items), dtype=torch.bool), -1e9)
        positive = batch["label"] > 0
        if not positive.any():
            zero = logits.sum() * 0
            return zero, {"total": 0.0, "softmax": 0.0}
        targets = torch.arange(len(items), device=logits.device)
        per_row = F.cross_entropy(logits[positive], targets[positive], reduction="none")
        weight = batch["weight"][positive].abs()
        loss = (per_row * weight).sum() / weight.sum()
        return loss, {"total": loss.item(), "softmax": loss.item()}
