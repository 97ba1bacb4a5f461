"""Dropout for the CPU whose mask costs a fraction of torch's: the models' layers use it."""

from __future__ import annotations

import torch
from torch import nn

LEVELS = 256  # one random byte per element


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose keep mask on the CPU comes from random bytes: one 64-bit draw of
    torch's generator gives eight elements their byte, kept when it is at least round(256 p).
    torch's own CPU dropout draws per element and was a third of the dual tower's training
    step at batch 1024 (bench/ ``models.step_profile``). The drop probability is therefore p
    rounded to the nearest 1/256 (0.2 -> 51/256 = 0.1992, 0.3 -> 77/256 = 0.3008), and kept
    values are scaled by the exact inverse of their keep probability, so the expectation is
    the input's (in fp32; a bfloat16 input's scale is rounded to bfloat16, 256/205 to 1.25).
    The draws come from torch's generator, so a seeded run repeats exactly. On other devices,
    outside training, and for a p under 1/512 (which would round to 0) it is torch's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        dropped = round(self.p * LEVELS)
        if dropped == 0:
            return super().forward(x)
        if dropped >= LEVELS:
            return x * 0.0
        words = torch.empty((x.numel() + 7) // 8, dtype=torch.int64).random_(-(2**63), None)
        kept = words.view(torch.uint8)[: x.numel()].view(x.shape) >= dropped  # (*x.shape,)
        mask = kept.to(x.dtype).mul_(LEVELS / (LEVELS - dropped))  # 0 or 1 / keep probability
        return x * mask
