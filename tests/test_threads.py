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


def test_blas_is_held_at_one_thread_after_a_region_until_a_large_gemm_asks() -> None:
    pytest.importorskip("threadpoolctl")
    top = min(2, numba.config.NUMBA_NUM_THREADS)
    with gpunet.using(threads=top):
        assert parallel.blas_threads() in (top, None)
        parallel.blas_single()
        assert parallel.blas_threads() in (1, None)  # until the setting changes: no spinning BLAS worker
        parallel.blas_for(parallel.BLAS_THREADED_MIN - 1)
        assert parallel.blas_threads() in (1, None)  # a small GEMM leaves it at one
        parallel.blas_for(parallel.BLAS_THREADED_MIN)
        assert parallel.blas_threads() in (top, None)  # a large one takes the setting's threads back


def test_the_kernels_blas_is_loaded_and_single_threaded_inside_a_split_conv(monkeypatch) -> None:
    """numba's np.dot calls SciPy's BLAS: the thread setting must reach it, and a split conv
    leaves every BLAS at one thread (its threads call BLAS themselves)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy

    from gpunet.ops import conv2d_cpu as fast

    libs = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    assert any("scipy" in lib.filepath for lib in libs)  # loaded when the kernels were imported
    monkeypatch.setattr(fast, "SPLIT_MIN", 0)
    top = min(2, numba.config.NUMBA_NUM_THREADS)
    with gpunet.using(threads=top):
        fast.conv2d_forward(numpy.ones((4, 1, 5, 5)), numpy.ones((2, 1, 3, 3)), (1, 1), (0, 0), (1, 1))
        assert all(lib.get_num_threads() == 1 for lib in parallel._blas_controllers())


def test_numba_pool_spins_briefly_and_the_variable_is_not_left_set() -> None:
    """The pool is started with a bounded GOMP spin count (not PASSIVE: a sleeping thread costs
    about 50 us to wake per region); the variable is set only while the pool starts."""
    import subprocess
    import sys

    code = ("import os; from gpunet import parallel; parallel.apply(1); "
            "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None"]
    assert 1_000 <= parallel.SPIN_COUNT <= 10_000_000


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conv2d_fast_path_split_over_threads_equals_reference(monkeypatch, dtype) -> None:
    """The numpy-fast conv2d with the batch split over 2 threads (and chunks of one sample)
    equals the reference, padding and stride included."""
    import numpy

    from gpunet.ops import conv2d as ref
    from gpunet.ops import conv2d_cpu as fast

    monkeypatch.setattr(fast, "SPLIT_MIN", 0)
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


def test_a_recurrent_layer_splits_its_own_work_and_leaves_blas_single_threaded() -> None:
    """The recurrent GEMMs and loops run in numba regions (BLAS at one thread inside): a layer at
    two threads equals the same layer at one, and never wakes BLAS's own threads."""
    pytest.importorskip("threadpoolctl")
    import numpy

    from gpunet import nn
    from gpunet.autograd import Tensor

    top = min(2, numba.config.NUMBA_NUM_THREADS)
    if top < 2:
        pytest.skip("one core")
    gpunet.manual_seed(0)
    layer = nn.LSTM(32, 128)
    x = numpy.random.default_rng(0).standard_normal((50, 32, 32)).astype(numpy.float32)
    results = {}
    for threads in (1, top):
        with gpunet.using(threads=threads):
            parallel.blas_single()
            xt = Tensor(x, requires_grad=True)
            out, _ = layer(xt)
            out.sum().backward()
            results[threads] = (out.numpy(), numpy.asarray(xt.grad))
            assert parallel.blas_threads() in (1, None)
    for a, b in zip(results[1], results[top]):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
