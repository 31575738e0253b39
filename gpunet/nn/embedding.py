"""Embedding: a lookup table of learned vectors, one row per token id."""

from __future__ import annotations

from typing import Any

from gpunet.autograd import Tensor
from gpunet.functional.sparse import EmbeddingLookup, embedding
from gpunet.nn import init, validate
from gpunet.nn.module import Module, Parameter


class Embedding(Module):
    """``Embedding(num_embeddings, embedding_dim, padding_idx=None)``; weights N(0, 1) like PyTorch.

    The ``padding_idx`` row starts at zero and receives no gradient. Counts as one layer (it has
    weights: it is a linear layer applied to one-hot inputs).
    """

    layer_count = 1

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None) -> None:
        super().__init__()
        num_embeddings = validate.size("Embedding", "num_embeddings", num_embeddings)
        embedding_dim = validate.size("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not validate.is_int(padding_idx):
                raise TypeError(f"Embedding: expected padding_idx to be an integer or None, got {padding_idx!r}")
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must lie in [-{num_embeddings}, {num_embeddings}), "
                                 f"got {padding_idx}")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.weight = Parameter(init.normal((num_embeddings, embedding_dim), 1.0))
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, ids: Any) -> Tensor:
        raw = ids.data if isinstance(ids, Tensor) else self.weight.xp.asarray(ids)
        if raw.dtype.kind not in "iu":
            raise validate.LayerDtypeError(f"Embedding: expected integer token ids (int64 or int32), got dtype "
                                           f"{raw.dtype}; convert them with ids.long() (ids.astype('int64'))")
        return embedding(raw, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


__all__ = ["Embedding", "EmbeddingLookup", "embedding"]
