"""A NumPy GEMM split over numba's threads (the recurrent layers' input projections and weight
gradients): one parallel region whose threads each call single-threaded BLAS (``np.dot``).

BLAS's own threads are avoided because, once woken, OpenBLAS's worker spins for up to 0.1 s and
takes a core from the numba regions that follow (the recurrent loops, :mod:`gpunet.ops.sequence_cpu`).
``a @ b`` with a C-contiguous ``a`` is split over ``a``'s rows; with ``a`` the transpose of a
C-contiguous ``m`` (a weight gradient, ``m.T @ b``) over the shared dimension, each thread
summing its rows' product into its own copy, added up afterwards.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from gpunet import settings
from gpunet.ops.regions_cpu import POOL, claim_part, in_parts, scratch

Array = Any

#: Below this many multiply-adds a GEMM runs as one call on the calling thread.
SPLIT_MIN = 1 << 20


@numba.njit(cache=True, nogil=True, inline="always")
def rows_part(a, b, out, part, parts):  # pragma: no cover - compiled
    """``out[rows] = a[rows] @ b`` for part ``part`` of ``a``'s rows."""
    m = a.shape[0]
    lo, hi = m * part // parts, m * (part + 1) // parts
    if hi > lo:
        np.dot(a[lo:hi], b, out[lo:hi])


@numba.njit(cache=True, nogil=True, inline="always")
def shared_part(m_, b, sums, part, parts):  # pragma: no cover - compiled
    """``sums[part] = m_[rows].T @ b[rows]`` over part ``part`` of the shared rows."""
    r = m_.shape[0]
    lo, hi = r * part // parts, r * (part + 1) // parts
    if hi > lo:
        np.dot(m_[lo:hi].T, b[lo:hi], sums[part])
    else:
        sums[part][:] = 0


@numba.njit(parallel=True, cache=True, nogil=True)
def rows_parts(a, b, out, parts):  # pragma: no cover - compiled
    counter = np.zeros(1, np.int64)
    for _ in numba.prange(parts):
        p = claim_part(counter, parts)
        while p >= 0:
            rows_part(a, b, out, p, parts)
            p = claim_part(counter, parts)


@numba.njit(parallel=True, cache=True, nogil=True)
def shared_parts(m_, b, sums, parts):  # pragma: no cover - compiled
    counter = np.zeros(1, np.int64)
    for _ in numba.prange(parts):
        p = claim_part(counter, parts)
        while p >= 0:
            shared_part(m_, b, sums, p, parts)
            p = claim_part(counter, parts)


def matmul(a: Array, b: Array, out: Array) -> Array:
    """``out = a @ b`` (2-D NumPy arrays, ``out`` C-contiguous), split over the thread setting
    when large; other dtypes, one thread and small products are one ``np.matmul``."""
    rows, inner = a.shape
    threads = settings.current().threads
    same = a.dtype == b.dtype == out.dtype and a.dtype in (np.float32, np.float64)
    if threads == 1 or not same or rows * inner * b.shape[1] < SPLIT_MIN:
        return np.matmul(a, b, out=out)
    if b.flags.c_contiguous or b.flags.f_contiguous:
        if a.flags.c_contiguous:
            in_parts(rows_parts, min(threads, rows, POOL), a, b, out)
            return out
        if a.T.flags.c_contiguous and b.flags.c_contiguous:  # a weight gradient: m.T @ b
            parts = min(threads, inner, POOL)
            sums = scratch("gemm_sums", (parts, rows, b.shape[1]), a.dtype)
            in_parts(shared_parts, parts, a.T, b, sums)
            return np.sum(sums, axis=0, out=out)
    return np.matmul(a, b, out=out)
