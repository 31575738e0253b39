"""The NumPy fast path (``numpy-fast``) of pooling after a ReLU: one numba region each way.

``relu_max_pool2d(x) == max_pool2d(relu(x))`` and ``relu_avg_pool2d(x) == avg_pool2d(relu(x))``
with the references' arithmetic (:class:`gpunet.ops.relu_pool.ReluPoolReference`), but the ReLU
output, its mask and the pool's separate pass are never made: each window reads ``x`` once.

- **max**: the state is the flat argmax of each window, or ``-1`` where the window's maximum is
  not positive (its ReLU gradient is 0: that is where ``relu(x)`` at the argmax is not > 0).
- **avg**: the state is the bool ``x > 0``, written in the same pass.

The threads claim chunks of the batch until none is left (:mod:`gpunet.ops.regions_cpu`), and
the backward zeroes and fills its own chunk's slice of ``gx``, so no pass is serial.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy

from gpunet import settings
from gpunet.ops.regions_cpu import claim, in_parts, threads

Array = Any
Pair = tuple[int, int]
settings.apply_threads()  # before numba's pool starts: see gpunet.parallel


@numba.njit(cache=True, nogil=True, inline="always")
def max_forward_part(x, kh, kw, sh, sw, ph, pw, y, index, lo, hi):  # pragma: no cover - compiled
    """Windows of samples ``lo:hi``: ``y`` = max of ``x * (x > 0)`` (the first maximum; a NaN in
    the window makes it NaN, as in PyTorch); ``index`` = its flat ``r * W + s``, or -1 where
    ``y`` is not > 0 (NaN included: ReLU passes no gradient there)."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for a in range(lo, hi):
        for b in range(c):
            for i in range(oh):
                r0, r1 = max(i * sh - ph, 0), min(i * sh - ph + kh, h)
                for j in range(ow):
                    s0, s1 = max(j * sw - pw, 0), min(j * sw - pw + kw, w)
                    v = x[a, b, r0, s0]
                    best, where = v * (v > 0), r0 * w + s0
                    for r in range(r0, r1):
                        for s in range(s0, s1):
                            v = x[a, b, r, s]
                            v = v * (v > 0)
                            if v > best or (v != v and best == best):
                                best, where = v, r * w + s
                    y[a, b, i, j] = best
                    index[a, b, i, j] = where if best > 0 else -1


@numba.njit(cache=True, nogil=True, inline="always")
def max_forward_2x2_part(x, y, index, lo, hi):  # pragma: no cover - compiled
    """:func:`max_forward_part` for kernel 2, stride 2, no padding: fixed trip counts, and NaN
    found through the window's sum (ReLU outputs are >= 0 or NaN, so the sum is NaN exactly when
    one is), not a test per element, which stops the loop vectorising (5x slower)."""
    w = x.shape[3]
    for a in range(lo, hi):
        for b in range(y.shape[1]):
            for i in range(y.shape[2]):
                for j in range(y.shape[3]):
                    r, s = 2 * i, 2 * j
                    v = x[a, b, r, s]
                    best, where = v * (v > 0), r * w + s
                    total = best
                    for p in range(2):
                        for q in range(2):
                            v = x[a, b, r + p, s + q]
                            v = v * (v > 0)
                            total += v
                            if v > best:
                                best, where = v, (r + p) * w + s + q
                    if total != total:
                        best = total  # NaN: the window's maximum, with no gradient
                    y[a, b, i, j] = best
                    index[a, b, i, j] = where if best > 0 else -1


@numba.njit(parallel=True, cache=True, nogil=True)
def max_forward_parts(x, kh, kw, sh, sw, ph, pw, y, index, parts):  # pragma: no cover - compiled
    counter = numpy.zeros(1, numpy.int64)
    for _ in numba.prange(parts):
        chunk, lo, hi = claim(counter, x.shape[0])
        while chunk >= 0:
            max_forward_part(x, kh, kw, sh, sw, ph, pw, y, index, lo, hi)
            chunk, lo, hi = claim(counter, x.shape[0])


@numba.njit(parallel=True, cache=True, nogil=True)
def max_forward_2x2_parts(x, y, index, parts):  # pragma: no cover - compiled
    """Its own wrapper: a model that only pools 2x2 compiles only this kernel (about 1 s less)."""
    counter = numpy.zeros(1, numpy.int64)
    for _ in numba.prange(parts):
        chunk, lo, hi = claim(counter, x.shape[0])
        while chunk >= 0:
            max_forward_2x2_part(x, y, index, lo, hi)
            chunk, lo, hi = claim(counter, x.shape[0])


@numba.njit(cache=True, nogil=True, inline="always")
def max_backward_part(gy, index, gx, lo, hi):  # pragma: no cover - compiled
    """``gx`` (N, C, H*W) of samples ``lo:hi``: zero, then each ``gy`` at its window's argmax
    (windows whose maximum was not positive send nothing)."""
    n, c, oh, ow = gy.shape
    for a in range(lo, hi):
        gx[a] = 0
        for b in range(c):
            for i in range(oh):
                for j in range(ow):
                    k = index[a, b, i, j]
                    if k >= 0:
                        gx[a, b, k] += gy[a, b, i, j]


@numba.njit(parallel=True, cache=True, nogil=True)
def max_backward_parts(gy, index, gx, parts):  # pragma: no cover - compiled
    counter = numpy.zeros(1, numpy.int64)
    for _ in numba.prange(parts):
        chunk, lo, hi = claim(counter, gy.shape[0])
        while chunk >= 0:
            max_backward_part(gy, index, gx, lo, hi)
            chunk, lo, hi = claim(counter, gy.shape[0])


@numba.njit(cache=True, nogil=True, inline="always")
def avg_forward_part(x, kh, kw, sh, sw, ph, pw, scale, y, positive, lo, hi):  # pragma: no cover
    """``y`` = ``scale`` times the window sums of ``x * (x > 0)`` (zero padding counted);
    ``positive`` = ``x > 0``."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for a in range(lo, hi):
        for b in range(c):
            for r in range(h):
                for s in range(w):
                    positive[a, b, r, s] = x[a, b, r, s] > 0
            for i in range(oh):
                r0, r1 = max(i * sh - ph, 0), min(i * sh - ph + kh, h)
                for j in range(ow):
                    s0, s1 = max(j * sw - pw, 0), min(j * sw - pw + kw, w)
                    total = y.dtype.type(0)
                    for r in range(r0, r1):
                        for s in range(s0, s1):
                            v = x[a, b, r, s]
                            total += v * (v > 0)
                    y[a, b, i, j] = total * scale


@numba.njit(parallel=True, cache=True, nogil=True)
def avg_forward_parts(x, kh, kw, sh, sw, ph, pw, scale, y, positive, parts):  # pragma: no cover
    counter = numpy.zeros(1, numpy.int64)
    for _ in numba.prange(parts):
        chunk, lo, hi = claim(counter, x.shape[0])
        while chunk >= 0:
            avg_forward_part(x, kh, kw, sh, sw, ph, pw, scale, y, positive, lo, hi)
            chunk, lo, hi = claim(counter, x.shape[0])


@numba.njit(cache=True, nogil=True, inline="always")
def avg_backward_part(gy, positive, kh, kw, sh, sw, ph, pw, scale, gx, lo, hi):  # pragma: no cover
    """``gx`` of samples ``lo:hi``: ``scale * gy`` added over each window, times ``x > 0``."""
    n, c, h, w = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    for a in range(lo, hi):
        gx[a] = 0
        for b in range(c):
            for i in range(oh):
                r0, r1 = max(i * sh - ph, 0), min(i * sh - ph + kh, h)
                for j in range(ow):
                    s0, s1 = max(j * sw - pw, 0), min(j * sw - pw + kw, w)
                    g = gy[a, b, i, j] * scale
                    for r in range(r0, r1):
                        for s in range(s0, s1):
                            gx[a, b, r, s] += g
            for r in range(h):
                for s in range(w):
                    if not positive[a, b, r, s]:
                        gx[a, b, r, s] = 0


@numba.njit(parallel=True, cache=True, nogil=True)
def avg_backward_parts(gy, positive, kh, kw, sh, sw, ph, pw, scale, gx, parts):  # pragma: no cover
    counter = numpy.zeros(1, numpy.int64)
    for _ in numba.prange(parts):
        chunk, lo, hi = claim(counter, gx.shape[0])
        while chunk >= 0:
            avg_backward_part(gy, positive, kh, kw, sh, sw, ph, pw, scale, gx, lo, hi)
            chunk, lo, hi = claim(counter, gx.shape[0])


def _parts(n: int) -> int:
    return max(1, min(n, threads()))


def max_forward(x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> tuple[Array, Array]:
    """``(y, index)`` of ``max_pool2d(relu(x))`` for a float32/float64 NumPy ``x``."""
    x = numpy.ascontiguousarray(x)
    n, c = x.shape[:2]
    y = numpy.empty((n, c, *out_hw), dtype=x.dtype)
    index = numpy.empty((n, c, *out_hw), dtype=numpy.int32)
    if kernel == stride == (2, 2) and padding == (0, 0):
        in_parts(max_forward_2x2_parts, _parts(n), x, y, index)
    else:
        in_parts(max_forward_parts, _parts(n), x, *kernel, *stride, *padding, y, index)
    return y, index


def max_backward(gy: Array, index: Array, x_shape: tuple[int, ...]) -> Array:
    """The input gradient of :func:`max_forward` from ``gy`` and its ``index``."""
    n, c, h, w = x_shape
    gx = numpy.empty((n, c, h * w), dtype=gy.dtype)
    in_parts(max_backward_parts, _parts(n), numpy.ascontiguousarray(gy), index, gx)
    return gx.reshape(x_shape)


def avg_forward(x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> tuple[Array, Array]:
    """``(y, positive)`` of ``avg_pool2d(relu(x))`` for a float32/float64 NumPy ``x``."""
    x = numpy.ascontiguousarray(x)
    n, c = x.shape[:2]
    y = numpy.empty((n, c, *out_hw), dtype=x.dtype)
    positive = numpy.empty(x.shape, dtype=numpy.bool_)
    scale = x.dtype.type(1.0 / (kernel[0] * kernel[1]))
    in_parts(avg_forward_parts, _parts(n), x, *kernel, *stride, *padding, scale, y, positive)
    return y, positive


def avg_backward(gy: Array, positive: Array, kernel: Pair, stride: Pair, padding: Pair) -> Array:
    """The input gradient of :func:`avg_forward` from ``gy`` and its ``positive`` mask."""
    gx = numpy.empty(positive.shape, dtype=gy.dtype)
    scale = gy.dtype.type(1.0 / (kernel[0] * kernel[1]))
    in_parts(avg_backward_parts, _parts(gx.shape[0]), numpy.ascontiguousarray(gy), positive, *kernel, *stride,
             *padding, scale, gx)
    return gx
