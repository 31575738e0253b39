"""Launchers of ``kernels/fused.cu`` (SGD update, ReLU, cross-entropy) over a :class:`RawOps`.

Same contract as the references in :mod:`gpunet.ops.fused`; arguments are validated before any
launch (device arrays, one float dtype, shapes, 32-bit sizes), non-contiguous inputs are copied.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gpunet.cuda.kernel_constants import CELL_BLOCKS, MAX_INT, THREADS
from gpunet.cuda.raw_runtime import SUFFIX
from gpunet.ops.fused import check_reduction

Array = Any
SOURCE = "fused.cu"
INT32 = (-(2**31), 2**31 - 1)


def _grid(units: int) -> tuple[int, int, int]:
    return (min(math.ceil(units / THREADS), CELL_BLOCKS), 1, 1)


def _size(op: str, *arrays: Array) -> None:
    if max(a.size for a in arrays) > MAX_INT:
        raise ValueError(f"{op}: arrays larger than {MAX_INT} elements need 64-bit indexing")


class RawSgd:
    """``sgd_step`` in one launch per parameter."""

    def __init__(self, ops: Any) -> None:  # a gpunet.cuda.raw_ops.RawOps
        self.ops = ops

    def __call__(self, p: Array, grad: Array, buf: Array | None, lr: float, momentum: float,
                 dampening: float, weight_decay: float, nesterov: bool, maximize: bool) -> Array | None:
        op, rt = "sgd_step", self.ops.rt
        named = {"p": p, "grad": grad} if buf is None else {"p": p, "grad": grad, "buf": buf}
        dtype, arrays = self.ops._arrays(op, **named)
        for name, arr in zip(named, arrays):
            self.ops._expect(op, name, arr, p.shape)
        target, grad = arrays[0], arrays[1]
        first = bool(momentum) and buf is None
        if first:
            buf = rt.empty(p.shape, dtype)
        elif buf is not None and not buf.flags.c_contiguous:
            raise ValueError(f"{op}: expected 'buf' as a C-contiguous device array (updated in place), "
                             f"got strides {buf.strides}")
        _size(op, target)
        if target.size:
            t = dtype.type
            flags = int(bool(nesterov)) | 2 * int(bool(maximize)) | 4 * int(bool(first))
            rt.launch(SOURCE, f"sgd_step_{SUFFIX[dtype]}", _grid(target.size), (THREADS, 1, 1),
                      (target, grad, buf if momentum else grad, numpy.int32(target.size),
                       t(lr), t(momentum), t(dampening), t(weight_decay), numpy.int32(flags)))
        if not p.flags.c_contiguous:  # the update ran on a contiguous copy
            p[...] = target
        return buf if momentum else None


class RawRelu:
    """ReLU forward and backward, one launch each."""

    def __init__(self, ops: Any) -> None:  # a gpunet.cuda.raw_ops.RawOps
        self.ops = ops

    def forward(self, x: Array) -> tuple[Array, Array]:
        """``(y, y)``: the backward reads the output (``y > 0`` exactly where ``x > 0``)."""
        dtype, (x,) = self.ops._arrays("relu", x=x)
        _size("relu", x)
        y = self.ops.rt.empty(x.shape, dtype)
        if x.size:
            self.ops.rt.launch(SOURCE, f"relu_fwd_{SUFFIX[dtype]}", _grid(x.size), (THREADS, 1, 1),
                               (x, y, numpy.int32(x.size)))
        return y, y

    def backward(self, y: Array, gy: Array) -> Array:
        op = "relu backward"
        dtype, (y, gy) = self.ops._arrays(op, y=y, gy=gy)
        self.ops._expect(op, "gy", gy, y.shape)
        _size(op, y)
        gx = self.ops.rt.empty(y.shape, dtype)
        if y.size:
            self.ops.rt.launch(SOURCE, f"relu_bwd_{SUFFIX[dtype]}", _grid(y.size), (THREADS, 1, 1),
                               (y, gy, gx, numpy.int32(y.size)))
        return gx


class RawCrossEntropy:
    """Log-softmax + NLL: one launch per row pass, one block for the reduction."""

    def __init__(self, ops: Any) -> None:  # a gpunet.cuda.raw_ops.RawOps
        self.ops = ops

    def _labels(self, op: str, labels: Array, m: int) -> Array:
        xp = self.ops.rt.xp
        if not isinstance(labels, self.ops.rt.array_type) or labels.dtype.kind not in "iu":
            raise TypeError(f"{op}: expected integer labels as a device array, got "
                            f"{type(labels).__name__} {getattr(labels, 'dtype', '')}")
        self.ops._expect(op, "labels", labels, (m,))
        if labels.dtype == numpy.uint64:
            labels = labels.clip(0, MAX_INT)  # before the int64 cast, so 2**63 cannot wrap negative
        return xp.ascontiguousarray(labels.astype(numpy.int64, copy=False))

    def forward(self, x: Array, labels: Array, weight: Array | None, ignore_index: int, eps: float,
                reduction: str) -> tuple[Array, Any]:
        op, rt = "cross_entropy", self.ops.rt
        check_reduction(op, reduction)
        named = {"x": x} if weight is None else {"x": x, "weight": weight}
        dtype, arrays = self.ops._arrays(op, **named)
        x = arrays[0]
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"{op}: expected logits of shape (M, C) with C >= 1, got {tuple(x.shape)}")
        m, c = x.shape
        weight = arrays[1] if weight is not None else None
        if weight is not None:
            self.ops._expect(op, "weight", weight, (c,))
        if not INT32[0] <= int(ignore_index) <= INT32[1]:
            raise ValueError(f"{op}: expected ignore_index in the int32 range, got {ignore_index}")
        labels = self._labels(op, labels, m)
        _size(op, x)
        logp, loss, w_row = rt.empty((m, c), dtype), rt.empty((m,), dtype), rt.empty((m,), dtype)
        suffix, t = SUFFIX[dtype], dtype.type
        geo = (numpy.int32(m), numpy.int32(c), numpy.int32(ignore_index), numpy.int32(weight is not None))
        if m:
            rt.launch(SOURCE, f"xent_fwd_{suffix}", _grid(m), (THREADS, 1, 1),
                      (x, labels, weight if weight is not None else x, logp, loss, w_row, *geo, t(eps)))
        denom = None
        if reduction != "none":
            out, denom = rt.empty((), dtype), rt.empty((), dtype)
            rt.launch(SOURCE, f"xent_reduce_{suffix}", (1, 1, 1), (THREADS, 1, 1),
                      (loss, w_row, out, denom, numpy.int32(m), numpy.int32(reduction == "mean")))
            loss = out
        return loss, (logp, labels, w_row, weight, denom, int(ignore_index), float(eps), reduction)

    def backward(self, gy: Array, state: Any) -> Array:
        op, rt = "cross_entropy backward", self.ops.rt
        logp, labels, w_row, weight, denom, ignore_index, eps, reduction = state
        m, c = logp.shape
        if hasattr(gy, "shape"):  # before _arrays: ascontiguousarray makes a 0-d array 1-d
            self.ops._expect(op, "gy", gy, (m,) if reduction == "none" else ())
        dtype, (gy,) = self.ops._arrays(op, gy=gy)
        if dtype != logp.dtype:
            raise TypeError(f"{op}: expected gy of dtype {logp.dtype}, got {dtype}")
        gx = rt.empty((m, c), dtype)
        if m:
            code = ("none", "sum", "mean").index(reduction)
            rt.launch(SOURCE, f"xent_bwd_{SUFFIX[dtype]}", _grid(m), (THREADS, 1, 1),
                      (gy, denom if denom is not None else gy, logp, labels, w_row,
                       weight if weight is not None else logp, gx, numpy.int32(m), numpy.int32(c),
                       numpy.int32(ignore_index), numpy.int32(weight is not None), numpy.int32(code),
                       dtype.type(eps)))
        return gx
