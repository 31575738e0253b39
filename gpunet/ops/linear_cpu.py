"""The NumPy fast path (``numpy-fast``) of ``linear``: its GEMMs split over numba's threads.

Every GEMM from :data:`SPLIT_MIN` multiply-adds up runs in one numba ``parallel`` region whose
threads each call single-threaded BLAS (``np.dot``): ``y[rows] = x[rows] @ W.T`` and ``gx[rows]
= gy[rows] @ W`` over the batch rows, and ``gW[outs] = gy[:, outs].T @ x`` with the bias
gradient in the same pass over the outputs (splitting the batch there would leave a serial sum
of per-thread ``gW`` copies: 0.1 ms for the MLP's first layer). BLAS's own threads are not used:
woken after a numba region (a conv, a smaller linear layer) they spun against numba's pool, and
the MLP's 2-thread step was slower than its 1-thread step (0.75-0.95x). Small GEMMs, one thread,
and dtypes other than float32/float64 run the reference.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from gpunet import settings
from gpunet.ops.linear import LINEAR_RELU_REFERENCE, REFERENCE, Needs
from gpunet.ops.regions_cpu import POOL, claim_part, in_parts, scratch

Array = Any

#: Below this many multiply-adds a GEMM runs on the calling thread (a region costs a few us).
SPLIT_MIN = 1 << 18


@numba.njit(cache=True, nogil=True, inline="always")
def forward_part(x, w, bias, y, relu, mask, t, parts):  # pragma: no cover - compiled
    """``y[rows] = x[rows] @ w.T (+ bias)`` over part ``t`` of the rows (``w.T`` is read in place:
    BLAS's transposed operand, no copy); with ``relu``, then ``mask = y > 0`` and ``y = y * mask``
    in the same pass (the ReLU reference's arithmetic)."""
    m = x.shape[0]
    lo, hi = m * t // parts, m * (t + 1) // parts
    if hi > lo:
        yp = y[lo:hi]
        np.dot(x[lo:hi], w.T, yp)
        for r in range(hi - lo):
            for o in range(bias.shape[0]):
                yp[r, o] += bias[o]
        if relu:
            for r in range(lo, hi):
                for o in range(y.shape[1]):
                    keep = y[r, o] > 0
                    mask[r, o] = keep
                    y[r, o] = y[r, o] * keep


@numba.njit(cache=True, nogil=True, inline="always")
def backward_part(gy, relu, mask, gm, x, w, gx, gy_t, gw, gb, need_x, need_w, need_b, t,
                  parts):  # pragma: no cover - compiled
    """Part ``t``: ``gx[rows] = gy[rows] @ w`` over its share of the batch rows, and over its share
    of the outputs ``gy_t[outs] = gy[:, outs].T`` (contiguous), ``gw[outs] = gy_t[outs] @ x`` and
    ``gb[outs]`` = the rows' sums of ``gy_t[outs]`` (no reduction across threads). With ``relu``
    the gradient is ``gy * mask`` (its rows in ``gm``), formed by each thread for what it reads."""
    m, n_out = gy.shape
    lo, hi = m * t // parts, m * (t + 1) // parts
    if need_x and hi > lo:
        src = gy
        if relu:
            for r in range(lo, hi):
                for o in range(n_out):
                    gm[r, o] = gy[r, o] * mask[r, o]
            src = gm
        np.dot(src[lo:hi], w, gx[lo:hi])
    o0, o1 = n_out * t // parts, n_out * (t + 1) // parts
    if o1 > o0 and (need_w or need_b):
        for o in range(o0, o1):
            s = 0.0
            for r in range(m):
                v = gy[r, o] * mask[r, o] if relu else gy[r, o]
                gy_t[o, r] = v
                s += v
            if need_b:
                gb[o] = s
        if need_w:
            np.dot(gy_t[o0:o1], x, gw[o0:o1])


@numba.njit(parallel=True, cache=True, nogil=True)
def forward_parts(x, w, bias, y, relu, mask, parts):  # pragma: no cover - compiled
    """:func:`forward_part` for every part, claimed by the threads (one each when on time)."""
    counter = np.zeros(1, np.int64)
    for _ in numba.prange(parts):
        t = claim_part(counter, parts)
        while t >= 0:
            forward_part(x, w, bias, y, relu, mask, t, parts)
            t = claim_part(counter, parts)


@numba.njit(parallel=True, cache=True, nogil=True)
def backward_parts(gy, relu, mask, gm, x, w, gx, gy_t, gw, gb, need_x, need_w, need_b,
                   parts):  # pragma: no cover - compiled
    """:func:`backward_part` for every part, claimed by the threads (one each when on time)."""
    counter = np.zeros(1, np.int64)
    for _ in numba.prange(parts):
        t = claim_part(counter, parts)
        while t >= 0:
            backward_part(gy, relu, mask, gm, x, w, gx, gy_t, gw, gb, need_x, need_w, need_b, t, parts)
            t = claim_part(counter, parts)


def _parts(m: int, macs: int, *arrays: Array) -> int:
    """Threads for a GEMM of ``macs`` multiply-adds over ``m`` rows: 1 (the reference) when small,
    large (threaded BLAS), of another dtype, or when one thread is set."""
    threads = settings.current().threads
    if threads == 1 or macs < SPLIT_MIN or m < 2:
        return 1
    if any(a.dtype not in (np.float32, np.float64) or a.dtype != arrays[0].dtype for a in arrays):
        return 1
    return max(1, min(threads, m, POOL))


def _run_forward(x: Array, w: Array, b: Array | None, parts: int, relu: bool) -> tuple[Array, Array]:
    y = np.empty((x.shape[0], w.shape[0]), dtype=w.dtype)
    mask = np.empty(y.shape if relu else (0, 0), dtype=np.bool_)
    bias = b if b is not None else np.zeros(0, dtype=w.dtype)
    in_parts(forward_parts, parts, np.ascontiguousarray(x), np.ascontiguousarray(w), bias, y, relu, mask)
    return y, mask


def _run_backward(gy: Array, mask: Array | None, x: Array | None, w: Array | None, needs: Needs,
                  parts: int) -> tuple[Array | None, Array | None, Array | None]:
    gy = np.ascontiguousarray(gy)
    dtype, (m, n_out) = gy.dtype, gy.shape
    inner = (w if w is not None else x).shape[-1]  # in_features
    nothing = np.zeros((0, 0), dtype=dtype)
    relu = mask is not None
    gx = np.empty((m, inner), dtype=dtype) if needs[0] else nothing
    gw = np.empty((n_out, inner), dtype=dtype) if needs[1] else nothing
    gb = np.empty(n_out, dtype=dtype) if needs[2] else np.zeros(0, dtype=dtype)
    gy_t = scratch("linear_gy_t", (n_out, m), dtype) if (needs[1] or needs[2]) else nothing
    gm = scratch("linear_gm", (m, n_out), dtype) if relu and needs[0] else nothing
    in_parts(backward_parts, parts, gy, relu, mask if relu else np.zeros((0, 0), dtype=np.bool_), gm,
             np.ascontiguousarray(x) if needs[1] else nothing, np.ascontiguousarray(w) if needs[0] else nothing,
             gx, gy_t, gw, gb, bool(needs[0]), bool(needs[1]), bool(needs[2]))
    return (gx if needs[0] else None, gw if needs[1] else None, gb if needs[2] else None)


class CompiledLinear:
    """The ``linear`` op's ``numpy-fast`` implementation (the interface of
    :class:`gpunet.ops.linear.LinearReference`)."""

    def forward(self, x: Array, w: Array, b: Array | None) -> Array:
        parts = _parts(x.shape[0], x.size * w.shape[0], x, w, *([b] if b is not None else []))
        if parts == 1:
            return REFERENCE.forward(x, w, b)
        return _run_forward(x, w, b, parts, False)[0]

    def backward(self, gy: Array, x: Array | None, w: Array | None,
                 needs: Needs) -> tuple[Array | None, Array | None, Array | None]:
        if not (needs[0] or needs[1]):
            return REFERENCE.backward(gy, x, w, needs)
        inner = (w if w is not None else x).shape[-1]
        parts = _parts(gy.shape[0], gy.size * inner, *[a for a in (gy, x, w) if a is not None])
        if parts == 1:
            return REFERENCE.backward(gy, x, w, needs)
        return _run_backward(gy, None, x, w, needs, parts)


class CompiledLinearRelu:
    """The ``linear_relu`` op's ``numpy-fast`` implementation (the interface of
    :class:`gpunet.ops.linear.LinearReluReference`): the ReLU and its mask in the GEMM's region,
    and its gradient formed inside the backward's region, at one thread too. Dtypes other than
    float32/float64 and mixed dtypes run the reference."""

    def forward(self, x: Array, w: Array, b: Array | None) -> tuple[Array, Any]:
        arrays = (x, w) if b is None else (x, w, b)
        if any(a.dtype.char not in "fd" or a.dtype != w.dtype for a in arrays):
            y, state = LINEAR_RELU_REFERENCE.forward(x, w, b)
            return y, ("reference", state)
        parts = _parts(x.shape[0], x.size * w.shape[0], *arrays)
        y, mask = _run_forward(x, w, b, parts, True)
        return y, ("compiled", mask)

    def backward(self, gy: Array, state: Any, x: Array | None, w: Array | None,
                 needs: Needs) -> tuple[Array | None, Array | None, Array | None]:
        how, saved = state
        if how == "reference":
            return LINEAR_RELU_REFERENCE.backward(gy, saved, x, w, needs)
        if not (needs[0] or needs[1]):  # the bias's gradient alone (or nothing)
            return None, None, (gy * saved).sum(axis=0) if needs[2] else None
        inner = (w if w is not None else x).shape[-1]
        parts = _parts(gy.shape[0], gy.size * inner, *[a for a in (gy, x, w) if a is not None])
        return _run_backward(gy, saved, x, w, needs, parts)


COMPILED = CompiledLinear()
COMPILED_RELU = CompiledLinearRelu()
