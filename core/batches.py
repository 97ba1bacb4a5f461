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

    def with_batch_size(self, batch_size: int) -> TensorBatches:
        """These rows, in their order, in batches of ``batch_size``."""
        return TensorBatches(
            self.tensors,
            meta=self.meta,
            batch_size=batch_size,
            shuffle=False,
            seed=0,
            standardizer=self.standardizer,
        )

    def subset(self, rows: torch.Tensor) -> TensorBatches:
        """These batches restricted to ``rows`` (positions, in the order given)."""
        return TensorBatches(
            {name: tensor[rows] for name, tensor in self.tensors.items()},
            meta=self.meta.iloc[rows.numpy()],
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            seed=int(self._generator.initial_seed()),
            standardizer=self.standardizer,
        )

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


class Windows:
    """Sequence windows read lazily from one (rows, features) tensor: window ``i`` is the
    ``length`` rows ending at row ``ends[i]``. Indexing gathers only the batch's windows,
    so a universe's windows never exist all at once (500 tickers x 10 years of weekly
    12-step windows would be 0.6 GB per copy); ``TensorBatches`` slices it like a tensor."""

    def __init__(self, rows: torch.Tensor, ends: torch.Tensor, length: int) -> None:
        if len(ends) and int(ends.min()) < length - 1:
            raise ValueError(f"a window ends before row {length - 1}: it needs {length} rows")
        self.rows, self.ends, self.length = rows, ends, length
        self._offsets = torch.arange(length - 1, -1, -1)

    def __len__(self) -> int:
        return len(self.ends)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.ends), self.length, self.rows.shape[-1])

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        positions = self.ends[index].unsqueeze(-1) - self._offsets  # (B, L), oldest first
        return self.rows[positions]  # (B, L, F)

    def used_rows(self) -> torch.Tensor:
        """The rows some window reads, (R, F): what a finiteness check must look at."""
        read = torch.zeros(len(self.rows), dtype=torch.bool)
        for offset in range(self.length):
            read[self.ends - offset] = True
        return self.rows[read]
