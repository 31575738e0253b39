"""Threads claim chunks of a region's work (gpunet.ops.regions_cpu): every chunk goes to exactly
one thread, the chunks cover the work, and the results do not depend on the thread count."""

from __future__ import annotations

import numba
import numpy
import pytest

import gpunet
from gpunet.ops import conv2d_cpu as fast
from gpunet.ops.regions_cpu import CHUNKS, chunk_bounds, chunk_count, claim, claim_part, next_chunk

TOP = min(2, numba.config.NUMBA_NUM_THREADS)


@numba.njit(parallel=True)
def _claim_all(claims, owner, parts):  # pragma: no cover - compiled
    counter = numpy.zeros(1, numpy.int64)
    for t in numba.prange(parts):
        chunk = next_chunk(counter)
        while chunk < claims.shape[0]:
            claims[chunk] += 1
            owner[chunk] = t
            chunk = next_chunk(counter)


def test_every_chunk_is_claimed_exactly_once_under_contention():
    """100 000 claims by two threads racing on one counter: a non-atomic add would hand some
    chunk to both threads (or skip one)."""
    claims = numpy.zeros(100_000, numpy.int64)
    owner = numpy.full(100_000, -1, numpy.int64)
    with gpunet.using(threads=TOP):
        _claim_all(claims, owner, TOP)
    assert (claims == 1).all()
    assert set(numpy.unique(owner)) <= set(range(TOP))


@numba.njit(parallel=True)
def _cover(items, owner, parts):  # pragma: no cover - compiled
    counter = numpy.zeros(1, numpy.int64)
    for t in numba.prange(parts):
        chunk, lo, hi = claim(counter, items.shape[0])
        while chunk >= 0:
            for i in range(lo, hi):
                items[i] += 1
                owner[i] = t
            chunk, lo, hi = claim(counter, items.shape[0])


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_claimed_ranges_cover_every_item_once(n):
    items, owner = numpy.zeros(n, numpy.int64), numpy.full(n, -1, numpy.int64)
    with gpunet.using(threads=TOP):
        _cover(items, owner, TOP)
    assert (items == 1).all() and (owner >= 0).all()


@pytest.mark.parametrize("n", [0, 1, 5, CHUNKS, CHUNKS + 1, 64, 1000])
def test_chunks_cover_the_items_in_order_and_depend_on_the_count_alone(n):
    chunks = chunk_count(n)
    assert chunks == max(1, min(n, CHUNKS))
    bounds = [chunk_bounds(n, c, chunks) for c in range(chunks)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(hi > lo for lo, hi in bounds) or n == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch", [1, 3, 37])
def test_conv2d_is_bit_identical_at_one_and_two_threads(monkeypatch, dtype, batch):
    """The weight and bias gradients are per-chunk partials added in chunk order, so a second
    thread changes no bit (a per-thread sum would: its split follows the thread count)."""
    monkeypatch.setattr(fast, "SPLIT_MIN", 0)
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((batch, 3, 9, 8)).astype(dtype)
    w = rng.standard_normal((5, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    gy = rng.standard_normal((batch, 5, 7, 6)).astype(dtype)
    geo = ((1, 1), (0, 0), (1, 1))
    results = []
    for threads in (1, TOP):
        with gpunet.using(threads=threads):
            y, state = fast.COMPILED.forward(x, w, b, *geo, True, True)
            grads = fast.COMPILED.backward(gy, state, (True, True, True))
            recomputed = fast.conv2d_backward_weight(x, gy, w.shape, *geo)  # columns formed again
        results.append((y, *grads, recomputed))
    for one, two in zip(*results):
        numpy.testing.assert_array_equal(one, two)


def test_conv2d_of_an_empty_batch_has_zero_weight_gradients(monkeypatch):
    monkeypatch.setattr(fast, "SPLIT_MIN", 0)
    x, w = numpy.zeros((0, 2, 5, 5)), numpy.ones((3, 2, 3, 3))
    y, state = fast.COMPILED.forward(x, w, numpy.ones(3), (1, 1), (0, 0), (1, 1), True, True)
    gx, gw, gb = fast.COMPILED.backward(numpy.zeros(y.shape), state, (True, True, True))
    assert y.shape == (0, 3, 3, 3) and gx.shape == x.shape
    numpy.testing.assert_array_equal(gw, numpy.zeros(w.shape))
    numpy.testing.assert_array_equal(gb, numpy.zeros(3))


@numba.njit(parallel=True)
def _claim_parts(claims, threads):  # pragma: no cover - compiled
    counter = numpy.zeros(1, numpy.int64)
    for _ in numba.prange(threads):
        part = claim_part(counter, claims.shape[0])
        while part >= 0:
            claims[part] += 1
            part = claim_part(counter, claims.shape[0])


@pytest.mark.parametrize("parts", [1, 2, 5])
def test_fixed_parts_are_each_claimed_once(parts):
    """The GEMM kernels' parts (one per thread, claimed so that a late thread's part is taken
    by one that finished): every part runs exactly once, whatever the thread count."""
    claims = numpy.zeros(parts, numpy.int64)
    with gpunet.using(threads=TOP):
        _claim_parts(claims, TOP)
    assert (claims == 1).all()
