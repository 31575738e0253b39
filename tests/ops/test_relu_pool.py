"""relu_max_pool2d / relu_avg_pool2d on every implementation, against the spec: the pool reference
applied to the ReLU reference's output (gpunet/ops/pool.py, gpunet/ops/fused.py), on
cases.POOL_CASES (overlapping windows, padding, ties, ragged edges, LeNet's shape)."""

from __future__ import annotations

import cases
import numba
import numpy
import pytest

import gpunet
from gpunet.ops import fused, pool, relu_pool

POOL_OF = {"relu_max_pool2d": pool.MAX_REFERENCE, "relu_avg_pool2d": pool.AVG_REFERENCE}
OPS = tuple(POOL_OF)


def _spec(op, x, geo, gy):
    """``pool(relu(x))`` and its input gradient, by the two references one after the other."""
    r, mask = fused.RELU_REFERENCE.forward(x)
    y, state = POOL_OF[op].forward(r, *geo, True)
    return y, fused.RELU_REFERENCE.backward(mask, POOL_OF[op].backward(gy, state, x.shape))


def _geometry(op, x, case):
    out_hw = pool.check_pool2d_input(op, x, case.kernel, case.stride, case.padding)
    return case.kernel, case.stride, case.padding, out_hw


def _check(op, obj, case, dtype, put, get, seed=0):
    rng = numpy.random.default_rng(seed)
    x = (rng.integers(-2, 3, case.x) if case.ties else rng.standard_normal(case.x)).astype(dtype)
    geo = _geometry(op, x, case)
    gy = rng.standard_normal((*case.x[:2], *geo[3])).astype(dtype)
    y_want, gx_want = _spec(op, x, geo, gy)
    y, state = obj.forward(put(x), *geo, True)
    cases.assert_close(f"{op} forward", get(y), y_want, dtype)
    assert obj.forward(put(x), *geo, False)[1] is None, f"{op}: nothing saved without save"
    cases.assert_close(f"{op} backward", get(obj.backward(put(gy), state, x.shape)), gx_want, dtype)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.ops(*OPS, cases=cases.POOL_CASES)
def test_relu_pool_equals_pool_of_relu(impl, case, dtype, op):
    _check(op, impl.op(op), case, dtype, impl.put, impl.get)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.ops(*OPS, cases={k: cases.POOL_CASES[k] for k in ("2x2_tiled", "3x3_s2_overlap", "lenet")})
def test_relu_pool_two_threads_equal_one(impl, case, op):
    """The batch split over threads changes nothing (each thread owns whole samples)."""
    x = numpy.random.default_rng(3).standard_normal(case.x).astype(numpy.float32)
    geo = _geometry(op, x, case)
    gy = numpy.random.default_rng(4).standard_normal((*case.x[:2], *geo[3])).astype(numpy.float32)
    results = []
    for threads in (1, 2):
        with gpunet.using(threads=min(threads, numba.config.NUMBA_NUM_THREADS)):
            y, state = impl.op(op).forward(impl.put(x), *geo, True)
            results.append((impl.get(y), impl.get(impl.op(op).backward(impl.put(gy), state, x.shape))))
    for one, two in zip(*results):
        numpy.testing.assert_array_equal(two, one, err_msg=f"{op}: 2 threads differ from 1")


GRAD_CASES = {name: cases.POOL_CASES[name] for name in ("3x3_s1_pad1", "asym_kernel_stride_pad")}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.ops(*OPS, cases=GRAD_CASES)
def test_relu_pool_gradcheck(impl, case, op):
    """float64 central differences, half the inputs negative (none within eps of the kink)."""
    cases.gradcheck_pool(op, impl.op(op), case, impl.put, impl.get, centered=True)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9)])
def test_compiled_max_nan_window_is_nan_with_no_gradient(shape):
    """A NaN makes its window's maximum NaN (as max_pool2d(relu(x)) does); ReLU passes no
    gradient at NaN, so that window sends none (PyTorch's relu backward is 0 there too)."""
    x = numpy.random.default_rng(0).standard_normal(shape).astype(numpy.float32)
    x[0, 1, 2, 3] = numpy.nan
    geo = _geometry("relu_max_pool2d", x, cases.Pool(shape, (2, 2), (2, 2)))
    y, state = relu_pool.MAX_COMPILED.forward(x, *geo, True)
    want, _ = _spec("relu_max_pool2d", x, geo, numpy.ones_like(y))
    numpy.testing.assert_array_equal(numpy.isnan(y), numpy.isnan(want))
    assert numpy.isnan(y[0, 1, 1, 1])
    gx = relu_pool.MAX_COMPILED.backward(numpy.ones_like(y), state, x.shape)
    assert gx[0, 1, 2:4, 2:4].sum() == 0 and numpy.isfinite(gx).all()
    mask = numpy.ones(y.shape, bool)
    mask[0, 1, 1, 1] = False
    numpy.testing.assert_array_equal(y[mask], want[mask])


@pytest.mark.parametrize("obj", [relu_pool.MAX_COMPILED, relu_pool.AVG_COMPILED], ids=["max", "avg"])
def test_compiled_float16_runs_the_reference(obj):
    x = numpy.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(numpy.float16)
    op = "relu_max_pool2d" if obj is relu_pool.MAX_COMPILED else "relu_avg_pool2d"
    geo = _geometry(op, x, cases.Pool(x.shape, (2, 2), (2, 2)))
    gy = numpy.ones((2, 3, 3, 3), numpy.float16)
    y, state = obj.forward(x, *geo, True)
    y_want, gx_want = _spec(op, x, geo, gy)
    assert y.dtype == numpy.float16
    numpy.testing.assert_array_equal(y, y_want)
    numpy.testing.assert_array_equal(obj.backward(gy, state, x.shape), gx_want)
