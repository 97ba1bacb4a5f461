"""Building blocks shared by the models."""

from __future__ import annotations

import torch
from torch import nn

from core.dropout import Dropout


def mlp(input_dim: int, hidden_dims: list[int], dropout: float) -> tuple[nn.Sequential, int]:
    """Linear -> ReLU -> Dropout per hidden width; returns the stack and its output width."""
    layers: list[nn.Module] = []
    width = input_dim
    for hidden in hidden_dims:
        layers += [nn.Linear(width, hidden), nn.ReLU(), Dropout(dropout)]
        width = hidden
    return nn.Sequential(*layers), width


class FeatureGate(nn.Module):
    """A learned scale per input feature, starting at 1: (B, F) -> (B, F) * scale. With
    ``penalty`` (the L1 norm of the scales, times a weight) added to the training loss it is
    a lasso over the inputs: a feature that does not pay for its scale is shrunk toward 0,
    so a network with few rows and many inputs leans on the few that carry a signal."""

    def __init__(self, features: int, weight: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(features))
        self.weight = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def penalty(self) -> torch.Tensor:
        return self.weight * self.scale.abs().sum()


class Bilinear(nn.Bilinear):
    """``nn.Bilinear`` (same weights, same outputs) computed as one matrix product and one
    batched matrix-vector product. torch's own path loops a small product per output unit
    (``_trilinear``) and was over half of the dual tower's CPU step at batch 1024; this one
    is several times faster forward and backward (bench/ models.step_profile). It never
    forms the (B, L*R) outer product of its inputs, whose elementwise passes cost more than
    the products themselves: the wider input is contracted by the matrix product, so the
    intermediate holds B x K x min(L, R) values."""

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """left (B, L), right (B, R) -> (B, K) with out[b, k] = left[b] W[k] right[b] + bias[k]."""
        if left.dim() != 2 or right.dim() != 2:  # (*, L) inputs: torch's own path
            return super().forward(left, right)
        batch, (units, width_left, width_right) = left.shape[0], self.weight.shape
        if width_left <= width_right:  # contract R in the product, L in the batched one
            weight = self.weight.permute(2, 0, 1).reshape(width_right, units * width_left)
            projected = (right @ weight).view(batch, units, width_left)  # (B, K, L)
            out = torch.bmm(projected, left.unsqueeze(2)).squeeze(2)  # (B, K)
        else:
            weight = self.weight.transpose(0, 1).reshape(width_left, units * width_right)
            projected = (left @ weight).view(batch, units, width_right)  # (B, K, R)
            out = torch.bmm(projected, right.unsqueeze(2)).squeeze(2)  # (B, K)
        return out + self.bias if self.bias is not None else out


class LSTM(nn.LSTM):
    """``nn.LSTM`` (same parameters and names, the same function) whose dropout between
    layers is ``core.dropout.Dropout``: torch's draws a mask per element of each layer's
    (B, L, D*H) output, and at batch 1024 that was a tenth of the LSTM model's step. Only a
    stack of layers with dropout, training on the CPU on a batched (3-D) tensor without
    projections, runs layer by layer; everything else (evaluation, CUDA, where cuDNN's
    fused multi-layer kernel is the fast path, packed or unbatched input) is torch's call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.between = Dropout(self.dropout)

    def forward(self, input, hx=None):
        layered = (
            self.training
            and self.dropout > 0
            and self.num_layers > 1
            and self.proj_size == 0
            and isinstance(input, torch.Tensor)
            and input.dim() == 3
            and input.device.type == "cpu"
        )
        if not layered:
            return super().forward(input, hx)
        self._update_flat_weights()  # as torch's forward does (functional_call, new tensors)
        self.between.p = self.dropout
        directions = 2 if self.bidirectional else 1
        batch = input.shape[0 if self.batch_first else 1]
        if hx is None:
            zeros = input.new_zeros(self.num_layers * directions, batch, self.hidden_size)
            hx = (zeros, zeros)
        else:
            self.check_forward_args(input, hx, None)
        per_layer = len(self._flat_weights) // self.num_layers  # (w_ih, w_hh[, b_ih, b_hh]) x D
        hidden, cell, x = [], [], input
        for layer in range(self.num_layers):
            if layer > 0:
                x = self.between(x)
            states = slice(layer * directions, (layer + 1) * directions)
            x, h, c = torch._VF.lstm(
                x,
                (hx[0][states], hx[1][states]),
                self._flat_weights[layer * per_layer : (layer + 1) * per_layer],
                self.bias,
                1,
                0.0,
                self.training,
                self.bidirectional,
                self.batch_first,
            )  # x (B, L, D*H) batch first; h, c (D, B, H)
            hidden.append(h)
            cell.append(c)
        return x, (torch.cat(hidden), torch.cat(cell))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
