"""Embedding: a lookup table of learned vectors, one row per token id."""

from __future__ import annotations

from typing import Any

from gpunet import backend
from gpunet.autograd import Function, OpError, Tensor
from gpunet.nn import init
from gpunet.nn.module import Module, Parameter


class EmbeddingLookup(Function):
    """``weight[ids]``; the backward scatter-adds into the rows used (none into ``padding_idx``)."""

    def __init__(self, ids: Any, padding_idx: int | None = None) -> None:
        self.ids, self.padding_idx = ids, padding_idx

    def forward(self, weight):
        ids = self.ids
        if ids.dtype.kind not in "iu":
            raise OpError(f"embedding: expected integer token ids, got dtype {ids.dtype}")
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= weight.shape[0]):
            raise OpError(f"embedding: ids must lie in [0, {weight.shape[0]}), "
                          f"got range [{int(ids.min())}, {int(ids.max())}]")
        self.save_for_backward(weight.shape)
        return weight[ids]

    def backward(self, gy):
        shape, = self.saved
        flat_ids = self.ids.reshape(-1)
        flat = gy.reshape(flat_ids.size, -1)
        if self.padding_idx is not None:
            keep = flat_ids != self.padding_idx
            flat_ids, flat = flat_ids[keep], flat[keep]
        grad = self.xp.zeros(shape, dtype=gy.dtype)
        backend.scatter_add(self.xp, grad, flat_ids, flat)
        return grad


def embedding(ids: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``ids`` (any shape)."""
    raw = ids.data if isinstance(ids, Tensor) else weight.xp.asarray(ids)
    return EmbeddingLookup(raw, padding_idx)(weight)


class Embedding(Module):
    """``Embedding(num_embeddings, embedding_dim, padding_idx=None)``; weights N(0, 1) like PyTorch.

    The ``padding_idx`` row starts at zero and receives no gradient. Counts as one layer (it has
    weights: it is a linear layer applied to one-hot inputs).
    """

    layer_count = 1

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None) -> None:
        super().__init__()
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"Embedding: expected positive sizes, got {num_embeddings}, {embedding_dim}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must lie in [-{num_embeddings}, {num_embeddings}), "
                                 f"got {padding_idx}")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.weight = Parameter(init.normal((num_embeddings, embedding_dim), 1.0))
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, ids: Any) -> Tensor:
        return embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
