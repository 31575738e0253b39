"""The NumPy fast path (``numpy-fast``) of ``linear``: its GEMMs split over numba's threads.

BLAS threads a GEMM itself only when it is large (:data:`gpunet.parallel.BLAS_THREADED_MIN`
multiply-adds and up: its threads are then woken once and stay busy). Below that, a threaded
BLAS call wakes OpenBLAS's own pool, which then spins against numba's (see
:func:`gpunet.parallel.blas_single`), so mid-sized GEMMs (LeNet's fully connected layers, 0.6-3
M multiply-adds) ran on one core. Here they are split over the batch rows in one numba
``parallel`` region whose threads each call single-threaded BLAS (``np.dot``): ``y[rows] =
x[rows] @ W.T``, ``gx[rows] = gy[rows] @ W``, and ``gW = sum over parts of gy[rows].T @
x[rows]`` (the bias gradient in the same pass). Small GEMMs (under :data:`SPLIT_MIN`) and
dtypes other than float32/float64 run the reference.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from gpunet import parallel, settings
from gpunet.ops.conv2d_cpu import _scratch
from gpunet.ops.linear import REFERENCE, Needs

Array = Any

#: Below this many multiply-adds a GEMM runs on the calling thread (a region costs a few us).
SPLIT_MIN = 1 << 18


@numba.njit(parallel=True, cache=True, nogil=True)
def forward_kernel(x, w_t, bias, y, parts):  # pragma: no cover - compiled
    """``y[rows] = x[rows] @ w_t (+ bias)``, one part of the rows per thread."""
    m = x.shape[0]
    for t in numba.prange(parts):
        lo, hi = m * t // parts, m * (t + 1) // parts
        if hi > lo:
            yp = y[lo:hi]
            np.dot(x[lo:hi], w_t, yp)
            for r in range(hi - lo):
                for o in range(bias.shape[0]):
                    yp[r, o] += bias[o]


@numba.njit(parallel=True, cache=True, nogil=True)
def backward_kernel(gy, x, w, gx, gw_parts, gb_parts, need_x, need_w, parts):  # pragma: no cover - compiled
    """``gx[rows] = gy[rows] @ w``; ``gw_parts[t] = gy[rows].T @ x[rows]``; ``gb_parts[t]`` the
    column sums of ``gy[rows]`` (when it has rows), one part of the rows per thread."""
    m = gy.shape[0]
    for t in numba.prange(parts):
        lo, hi = m * t // parts, m * (t + 1) // parts
        if need_x:
            np.dot(gy[lo:hi], w, gx[lo:hi])
        if need_w:
            np.dot(gy[lo:hi].T, x[lo:hi], gw_parts[t])
        if gb_parts.shape[0]:
            acc = gb_parts[t]
            acc[:] = 0
            for r in range(lo, hi):
                acc += gy[r]


def _parts(m: int, macs: int, *arrays: Array) -> int:
    """Threads for a GEMM of ``macs`` multiply-adds over ``m`` rows: 1 (the reference) when small,
    large (threaded BLAS), of another dtype, or when one thread is set."""
    threads = settings.current().threads
    if threads == 1 or macs < SPLIT_MIN or m < 2:
        return 1
    if macs >= parallel.BLAS_THREADED_MIN:
        parallel.blas_for(macs)  # BLAS's own threads, after a region left it at one
        return 1
    if any(a.dtype not in (np.float32, np.float64) or a.dtype != arrays[0].dtype for a in arrays):
        return 1
    return max(1, min(threads, m, numba.get_num_threads()))


class CompiledLinear:
    """The ``linear`` op's ``numpy-fast`` implementation (the interface of
    :class:`gpunet.ops.linear.LinearReference`)."""

    def forward(self, x: Array, w: Array, b: Array | None) -> Array:
        parts = _parts(x.shape[0], x.size * w.shape[0], x, w, *([b] if b is not None else []))
        if parts == 1:
            return REFERENCE.forward(x, w, b)
        parallel.blas_single()
        y = np.empty((x.shape[0], w.shape[0]), dtype=w.dtype)
        bias = b if b is not None else np.zeros(0, dtype=w.dtype)
        forward_kernel(np.ascontiguousarray(x), np.ascontiguousarray(w.T), bias, y, parts)
        return y

    def backward(self, gy: Array, x: Array | None, w: Array | None,
                 needs: Needs) -> tuple[Array | None, Array | None, Array | None]:
        if not (needs[0] or needs[1]):
            return REFERENCE.backward(gy, x, w, needs)
        inner = (w if w is not None else x).shape[-1]  # in_features
        parts = _parts(gy.shape[0], gy.size * inner, *[a for a in (gy, x, w) if a is not None])
        if parts == 1:
            return REFERENCE.backward(gy, x, w, needs)
        parallel.blas_single()
        gy = np.ascontiguousarray(gy)
        dtype = gy.dtype
        gx = np.empty((gy.shape[0], inner), dtype=dtype) if needs[0] else np.zeros((0, 0), dtype=dtype)
        gw_parts = (_scratch("linear_gw", (parts, gy.shape[1], inner), dtype) if needs[1]
                    else np.zeros((0, 0, 0), dtype=dtype))
        gb_parts = _scratch("linear_gb", (parts if needs[2] else 0, gy.shape[1]), dtype)
        x_ = np.ascontiguousarray(x) if needs[1] else np.zeros((0, 0), dtype=dtype)
        w_ = np.ascontiguousarray(w) if needs[0] else np.zeros((0, 0), dtype=dtype)
        backward_kernel(gy, x_, w_, gx, gw_parts, gb_parts, bool(needs[0]), bool(needs[1]), parts)
        return (gx if needs[0] else None, gw_parts.sum(axis=0) if needs[1] else None,
                gb_parts.sum(axis=0) if needs[2] else None)


COMPILED = CompiledLinear()
