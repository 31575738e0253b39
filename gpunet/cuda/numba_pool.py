"""numba.cuda kernels for 2-D max and average pooling (NCHW): one launch per pass.

The same design as ``kernels/pool.cu``: the forward runs one thread per output element (max
pooling also writes the flat ``r * W + s`` position of each window's first maximum, in the array
dtype); the backward runs one thread per input element and gathers the windows containing it
(no atomics: deterministic). Semantics: :mod:`gpunet.ops.pool`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numba import cuda

THREADS = 256
MAX_BLOCKS = 4096
KERNELS = ("max_forward", "max_backward", "avg_forward", "avg_backward")


@cache
def get_kernels(dtype: str) -> dict[str, Any]:
    """The four pooling kernels for ``dtype`` (``"float32"``/``"float64"``), compiled lazily."""
    t = np.dtype(dtype).type
    zero = t(0)

    @cuda.jit(device=True, inline=True)
    def window_range(i, p, k, s, out):
        ip = i + p
        first = ip - k + 1
        first = 0 if first <= 0 else (first + s - 1) // s
        return first, min(ip // s, out - 1)

    @cuda.jit(device=True, inline=True)
    def tap_range(r, stride, pad, k, size):
        """Input positions [lo, hi) that output position ``r``'s window covers, clipped to the input."""
        lo = r * stride - pad
        return max(lo, 0), min(lo + k, size)

    @cuda.jit
    def max_forward(x, y, index, kh, kw, sh, sw, ph, pw):
        planes, h, w = x.shape
        _, oh, ow = y.shape
        for e in range(cuda.grid(1), planes * oh * ow, cuda.gridsize(1)):
            c, rem = divmod(e, oh * ow)
            r, s = divmod(rem, ow)
            i0, i1 = tap_range(r, sh, ph, kh, h)
            j0, j1 = tap_range(s, sw, pw, kw, w)
            found, best, where = False, zero, 0
            for i in range(i0, i1):
                for j in range(j0, j1):
                    v = x[c, i, j]
                    if not found or v > best or (v != v and best == best):
                        best, where, found = v, i * w + j, True
            y[c, r, s] = best
            index[c, r, s] = where

    @cuda.jit
    def max_backward(gy, index, gx, kh, kw, sh, sw, ph, pw):
        planes, h, w = gx.shape
        _, oh, ow = gy.shape
        for e in range(cuda.grid(1), planes * h * w, cuda.gridsize(1)):
            c, rem = divmod(e, h * w)
            i, j = divmod(rem, w)
            r0, r1 = window_range(i, ph, kh, sh, oh)
            s0, s1 = window_range(j, pw, kw, sw, ow)
            acc = zero
            for r in range(r0, r1 + 1):
                for s in range(s0, s1 + 1):
                    if index[c, r, s] == rem:
                        acc += gy[c, r, s]
            gx[c, i, j] = acc

    @cuda.jit
    def avg_forward(x, y, kh, kw, sh, sw, ph, pw):
        planes, h, w = x.shape
        _, oh, ow = y.shape
        scale = t(1) / t(kh * kw)
        for e in range(cuda.grid(1), planes * oh * ow, cuda.gridsize(1)):
            c, rem = divmod(e, oh * ow)
            r, s = divmod(rem, ow)
            i0, i1 = tap_range(r, sh, ph, kh, h)
            j0, j1 = tap_range(s, sw, pw, kw, w)
            acc = zero
            for i in range(i0, i1):
                for j in range(j0, j1):
                    acc += x[c, i, j]
            y[c, r, s] = acc * scale

    @cuda.jit
    def avg_backward(gy, gx, kh, kw, sh, sw, ph, pw):
        planes, h, w = gx.shape
        _, oh, ow = gy.shape
        scale = t(1) / t(kh * kw)
        for e in range(cuda.grid(1), planes * h * w, cuda.gridsize(1)):
            c, rem = divmod(e, h * w)
            i, j = divmod(rem, w)
            r0, r1 = window_range(i, ph, kh, sh, oh)
            s0, s1 = window_range(j, pw, kw, sw, ow)
            acc = zero
            for r in range(r0, r1 + 1):
                for s in range(s0, s1 + 1):
                    acc += gy[c, r, s]
            gx[c, i, j] = acc * scale

    return {"max_forward": max_forward, "max_backward": max_backward, "avg_forward": avg_forward,
            "avg_backward": avg_backward}


def launch(name: str, dtype: str, units: int, *args: Any, stream: Any = 0) -> None:
    """Run pooling kernel ``name`` over ``units`` elements; arrays are (N*C, H, W) views."""
    if units == 0:
        return
    blocks = min(MAX_BLOCKS, -(-units // THREADS))
    get_kernels(dtype)[name][blocks, THREADS, stream](*args)
