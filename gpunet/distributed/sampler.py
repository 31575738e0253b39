"""DistributedSampler: each rank's share of every global batch, seeded per epoch.

The epoch's order is the one a single process would use (by default a permutation drawn from
``(seed, epoch)``, exactly :meth:`gpunet.data.DataLoader.order`; pass ``order=loader.order`` to
follow a loader). Global batch ``b`` is ``order[b*B:(b+1)*B]``; rank ``r`` of ``N`` takes the
``r``-th of its ``N`` contiguous, near-equal parts (:func:`numpy.array_split`). So the ranks'
shards are disjoint, cover the epoch, and N ranks with per-rank batches of about B/N see
exactly the global batches of one process with batch B. A rank's part of a short last batch may
be empty; its gradient weight is then 0 (see :meth:`weight`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy

from gpunet.distributed import comm


class DistributedSampler:
    def __init__(self, num_samples: int, batch_size: int, rank: int | None = None, world_size: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 order: Callable[[int], numpy.ndarray] | None = None) -> None:
        self.world_size = comm.get_world_size() if world_size is None else int(world_size)
        self.rank = comm.get_rank() if rank is None else int(rank)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"DistributedSampler: expected 0 <= rank < world_size, got rank {self.rank} of "
                             f"{self.world_size}")
        if batch_size <= 0:
            raise ValueError(f"DistributedSampler: expected batch_size > 0 (the global batch), got {batch_size}")
        self.num_samples, self.batch_size = int(num_samples), int(batch_size)
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self._order = order

    def __len__(self) -> int:
        """Number of (global) batches per epoch; the same on every rank."""
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def order(self, epoch: int) -> numpy.ndarray:
        """The epoch's global order (identical on every rank)."""
        if self._order is not None:
            return numpy.asarray(self._order(epoch))
        if not self.shuffle:
            return numpy.arange(self.num_samples)
        return numpy.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def global_batch_size(self, batch: int) -> int:
        return max(0, min(self.batch_size, self.num_samples - batch * self.batch_size))

    def batches(self, epoch: int) -> list[numpy.ndarray]:
        """This rank's indices of each global batch of ``epoch``."""
        order = self.order(epoch)
        return [numpy.array_split(order[b * self.batch_size:(b + 1) * self.batch_size], self.world_size)[self.rank]
                for b in range(len(self))]

    def indices(self, epoch: int) -> numpy.ndarray:
        """All of this rank's indices in ``epoch`` (its shard)."""
        parts = self.batches(epoch)
        return numpy.concatenate(parts) if parts else numpy.zeros(0, dtype=numpy.int64)

    def weight(self, batch: int, local_size: int) -> float:
        """This rank's share of global batch ``batch``: the gradient scale that turns the rank's
        mean loss into its part of the global mean (the all-reduce then sums)."""
        total = self.global_batch_size(batch)
        return local_size / total if total else 0.0
