"""The one threads setting drives BLAS (threadpoolctl) and numba together."""

from __future__ import annotations

import os

import numba
import pytest

import gpunet
from gpunet import parallel, settings


def test_default_is_the_cores_this_process_may_use() -> None:
    assert settings._initial().threads == len(os.sched_getaffinity(0)) == parallel.available_cores()


def test_set_num_threads_and_using_apply_to_blas_and_numba() -> None:
    pytest.importorskip("threadpoolctl")
    before = gpunet.get_num_threads()
    try:
        gpunet.set_num_threads(1)
        assert gpunet.get_num_threads() == 1 and numba.get_num_threads() == 1
        assert parallel.blas_threads() in (1, None)
        top = min(2, numba.config.NUMBA_NUM_THREADS)
        with gpunet.using(threads=top):
            assert gpunet.get_num_threads() == top and numba.get_num_threads() == top
            assert parallel.blas_threads() in (top, None)
        assert numba.get_num_threads() == 1 and parallel.blas_threads() in (1, None)
    finally:
        gpunet.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="threads"):
        gpunet.set_num_threads(bad)


def test_split_covers_the_range_in_near_equal_parts() -> None:
    assert parallel.split(5, 2) == [(0, 2), (2, 5)]
    assert parallel.split(1, 4) == [(0, 1)]
    assert parallel.split(7, 3) == [(0, 2), (2, 4), (4, 7)]


def test_over_batch_runs_every_part_and_leaves_blas_single_threaded() -> None:
    pytest.importorskip("threadpoolctl")
    import threading

    seen: list[tuple[int, int, int | None, str]] = []

    def work(lo: int, hi: int) -> None:
        seen.append((lo, hi, parallel.blas_threads(), threading.current_thread().name))

    top = min(2, numba.config.NUMBA_NUM_THREADS)
    with gpunet.using(threads=top):
        parallel.over_batch(9, top, work)
        assert parallel.blas_threads() in (1, None)  # until the setting changes: no spinning BLAS worker
        with gpunet.using(threads=1):
            pass
        assert parallel.blas_threads() in (top, None)  # a change of the setting applies it again
        parallel.over_batch(9, top, lambda lo, hi: None)
        parallel.blas_for(parallel.BLAS_THREADED_MIN - 1)
        assert parallel.blas_threads() in (1, None)  # a small GEMM leaves it at one
        parallel.blas_for(parallel.BLAS_THREADED_MIN)
        assert parallel.blas_threads() in (top, None)  # a large one takes the setting's threads back
    assert sorted(s[:2] for s in seen) == parallel.split(9, top)
    assert all(s[2] in (1, None) for s in seen)  # BLAS single-threaded while the parts run


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conv2d_fast_path_split_over_threads_equals_reference(monkeypatch, dtype) -> None:
    """The numpy-fast conv2d with the batch split over 2 threads (and chunks of one sample)
    equals the reference, padding and stride included."""
    import numpy

    from gpunet.ops import conv2d as ref
    from gpunet.ops import conv2d_cpu as fast

    monkeypatch.setattr(fast, "SPLIT_MIN", 0)
    monkeypatch.setattr(fast, "CHUNK_BYTES", 1)
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((5, 3, 9, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == "float64" else {"rtol": 1e-4, "atol": 1e-4}
    for args in [((1, 1), (0, 0), (1, 1)), ((1, 1), (1, 2), (1, 1)), ((2, 1), (1, 0), (1, 2))]:
        y = ref.conv2d_forward(x, w, *args)
        gy = rng.standard_normal(y.shape).astype(dtype)
        with gpunet.using(threads=2):
            out, state = fast.COMPILED.forward(x, w, b, *args, True, True)
            gx, gw, gb = fast.COMPILED.backward(gy, state, (True, True, True))
            gx2 = fast.conv2d_backward_input(gy, w, x.shape, *args)
            gw2 = fast.conv2d_backward_weight(x, gy, w.shape, *args)
        numpy.testing.assert_allclose(out, y + b[:, None, None], **tol)
        for got in (gx, gx2):
            numpy.testing.assert_allclose(got, ref.conv2d_backward_input(gy, w, x.shape, *args), **tol)
        for got in (gw, gw2):
            numpy.testing.assert_allclose(got, ref.conv2d_backward_weight(x, gy, w.shape, *args), **tol)
        numpy.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3)), **tol)


def test_over_batch_raises_a_part_s_error_and_keeps_working() -> None:
    def bad(lo: int, hi: int) -> None:
        if lo > 0:
            raise ValueError(f"part {lo}")

    with pytest.raises(ValueError, match="part 5"):
        parallel.over_batch(10, 2, bad)
    seen: list[tuple[int, int]] = []
    parallel.over_batch(10, 2, lambda lo, hi: seen.append((lo, hi)))
    assert sorted(seen) == [(0, 5), (5, 10)]
