"""``embedding``: rows of a weight table picked by integer ids (PyTorch's ``F.embedding``).

On NumPy an id outside ``[0, num_embeddings)`` is an ``OpError`` naming the range. On CuPy that
check would need a device-to-host copy (a sync) per call; instead ids are clamped on the device
for the gather (never an out-of-bounds read) and the rows of invalid ids come out as NaN.
"""

from __future__ import annotations

from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Function, OpError, Tensor


class EmbeddingLookup(Function):
    """``weight[ids]``; the backward scatter-adds into the rows used (none into ``padding_idx``)."""

    def __init__(self, ids: Any, padding_idx: int | None = None) -> None:
        self.ids, self.padding_idx = ids, padding_idx

    def forward(self, weight):
        ids, xp = self.ids, self.xp
        if ids.dtype.kind not in "iu":
            raise OpError(f"embedding: expected integer token ids, got dtype {ids.dtype}; convert them with "
                          f"ids.long() (ids.astype('int64'))")
        if weight.ndim != 2:
            raise OpError(f"embedding: expected a weight of shape (num_embeddings, dim), got {weight.shape}")
        rows = weight.shape[0]
        invalid = None
        if xp is numpy:
            if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= rows):
                raise OpError(f"embedding: ids must lie in [0, {rows}), got range [{int(ids.min())}, {int(ids.max())}]")
        else:  # no host sync on the GPU: flag on the device
            invalid = (ids < 0) | (ids >= rows)
            ids = ids.clip(0, rows - 1)
        self.save_for_backward(weight.shape, ids)
        out = weight[ids]
        if invalid is not None:
            out = xp.where(invalid[..., None], numpy.nan, out)  # a Python scalar: no h2d copy
        return out

    def backward(self, gy):
        shape, ids = self.saved
        flat_ids = ids.reshape(-1)
        flat = gy.reshape(flat_ids.size, -1)
        if self.padding_idx is not None:  # zero the padding rows' share: a boolean mask would sync
            flat = flat * (flat_ids != self.padding_idx)[:, None]
        grad = self.xp.zeros(shape, dtype=gy.dtype)
        backend.scatter_add(self.xp, grad, flat_ids, flat)
        return grad


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:  # noqa: A002
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ids ``input`` (any shape);
    the ``padding_idx`` row gets no gradient."""
    raw = input.data if isinstance(input, Tensor) else weight.xp.asarray(input)
    if padding_idx is not None:
        rows = weight.shape[0]
        if not -rows <= padding_idx < rows:
            raise OpError(f"embedding: padding_idx must lie in [-{rows}, {rows}), got {padding_idx}")
        padding_idx %= rows
    return EmbeddingLookup(raw, padding_idx)(weight)
