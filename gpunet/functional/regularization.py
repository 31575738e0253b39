"""Dropout: zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

The keep-mask is drawn on the host from :func:`gpunet.random.generator` (PCG64) and then moved
to the input's device, so one seed drops the same elements on the CPU and on the GPU (at the
cost of one host-to-device copy of the mask per call on CuPy; no device-to-host sync).
"""

from __future__ import annotations

import numbers

import numpy

from gpunet import backend
from gpunet.autograd import Function, OpError, Tensor
from gpunet.random import generator


class Dropout(Function):
    """``x * mask`` with ``mask`` holding 0 or ``1 / (1 - p)``; the backward multiplies by it."""

    def __init__(self, mask) -> None:
        self.mask = mask

    def forward(self, x):
        if x.dtype.kind != "f":
            raise OpError(f"dropout: expected a floating input, got dtype {x.dtype}")
        if tuple(self.mask.shape) != x.shape:
            raise OpError(f"dropout: expected a mask of shape {x.shape}, got {tuple(self.mask.shape)}")
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def check_p(owner: str, p) -> float:
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= float(p) < 1.0:
        raise OpError(f"{owner}: expected dropout probability p in [0, 1), got {p!r}")
    return float(p)


def keep_mask(shape: tuple[int, ...], p: float, dtype, like) -> object:
    """The scaled keep-mask, drawn on the host (seeded), placed on ``like``'s backend."""
    keep = generator().random(shape) >= p
    host = keep.astype(dtype) * numpy.asarray(1.0 / (1.0 - p), dtype=dtype)
    if backend.is_cupy_array(like):
        return backend.get_array_module(like).asarray(host)
    return host


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Inverted dropout; returns ``input`` unchanged when not ``training`` or ``p == 0``.
    ``inplace`` is accepted for PyTorch compatibility and ignored (a new tensor is returned)."""
    p = check_p("dropout", p)
    if not training or p == 0.0:
        return input
    if not isinstance(input, Tensor):
        raise OpError(f"dropout: expected a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise OpError(f"dropout: expected a floating input, got dtype {input.dtype}")
    return Dropout(keep_mask(input.shape, p, input.dtype, input.data))(input)
