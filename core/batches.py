"""Minibatches sliced by index from tensors held in memory: the loader every model trains
from (market rows and windows, recommender pairs)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pandas as pd
import torch


class TensorBatches:
    """Minibatches sliced from tensors that share their first dimension.

    ``meta`` describes each row in tensor order (date and ticker for market rows), for
    evaluation; ``standardizer`` is the scaler fitted on the training rows, if any.
    Shuffling uses its own generator, seeded, so runs repeat exactly.
    """

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        *,
        meta: pd.DataFrame,
        batch_size: int,
        shuffle: bool,
        seed: int,
        standardizer: Any = None,
    ) -> None:
        sizes = {len(t) for t in tensors.values()}
        if len(sizes) != 1:
            raise ValueError(f"tensors disagree on their row count: {sorted(sizes)}")
        self.tensors = tensors
        self.meta = meta.reset_index(drop=True)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.standardizer = standardizer
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def num_rows(self) -> int:
        return len(self.meta)

    def __len__(self) -> int:
        return math.ceil(self.num_rows / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        if self.shuffle:
            order = torch.randperm(self.num_rows, generator=self._generator)
        else:
            order = torch.arange(self.num_rows)
        for start in range(0, self.num_rows, self.batch_size):
            index = order[start : start + self.batch_size]
            yield {name: tensor[index] for name, tensor in self.tensors.items()}
