"""Datasets of aligned arrays and a DataLoader with seeded, resumable shuffling."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Tensor


class ArrayDataset:
    """Rows of several aligned host arrays (inputs first, the target last)."""

    def __init__(self, *arrays: numpy.ndarray) -> None:
        if not arrays:
            raise ValueError("ArrayDataset: expected at least one array")
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"ArrayDataset: expected arrays of one length, got lengths "
                             f"{[len(a) for a in arrays]}")
        self.arrays = tuple(numpy.asarray(a) for a in arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> tuple[numpy.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)


@dataclass
class Split:
    """A train/test pair and facts about the data (``num_classes``, ``input_shape``...)."""

    train: ArrayDataset
    test: ArrayDataset
    info: dict[str, Any] = field(default_factory=dict)


def train_test_split(arrays: tuple[numpy.ndarray, ...], test_fraction: float, seed: int,
                     stratify: numpy.ndarray | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """Shuffle rows with ``seed`` and split; ``stratify`` keeps label proportions per class."""
    rng = numpy.random.default_rng(seed)
    n = len(arrays[0])
    if stratify is None:
        order = rng.permutation(n)
        n_test = int(round(n * test_fraction))
        test_idx, train_idx = order[:n_test], order[n_test:]
    else:
        test_parts, train_parts = [], []
        for label in numpy.unique(stratify):
            idx = rng.permutation(numpy.flatnonzero(stratify == label))
            n_test = int(round(len(idx) * test_fraction))
            test_parts.append(idx[:n_test])
            train_parts.append(idx[n_test:])
        test_idx = rng.permutation(numpy.concatenate(test_parts))
        train_idx = rng.permutation(numpy.concatenate(train_parts))
    return (ArrayDataset(*(a[train_idx] for a in arrays)), ArrayDataset(*(a[test_idx] for a in arrays)))


class DataLoader:
    """Batches of a dataset as Tensors on the active backend.

    Shuffling draws the epoch's order from ``seed`` and the epoch number, so epoch ``e`` always
    sees the same order and a resumed run can skip the batches it already trained on
    (:meth:`iterate` with ``start_batch``).
    """

    def __init__(self, dataset: ArrayDataset, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, batch_sampler: Any = None) -> None:
        if batch_size <= 0:
            raise ValueError(f"DataLoader: expected batch_size > 0, got {batch_size}")
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        self.batch_sampler = batch_sampler  # batches(epoch) -> index arrays (a DistributedSampler)

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> numpy.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return numpy.arange(n)
        return numpy.random.default_rng([self.seed, epoch]).permutation(n)

    def iterate(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[Tensor, ...]]:
        order = self.order(epoch) if self.batch_sampler is None else None
        batches = self.batch_sampler.batches(epoch) if self.batch_sampler is not None else None
        xp = backend.xp()
        for b in range(start_batch, len(self)):
            idx = batches[b] if batches is not None else order[b * self.batch_size: (b + 1) * self.batch_size]
            yield tuple(Tensor(xp.asarray(a)) for a in self.dataset[idx])

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        epoch = self.epoch
        self.epoch += 1
        return self.iterate(epoch)
