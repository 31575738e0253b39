"""The max_pool2d / avg_pool2d implementation objects on every implementation, against the
reference (gpunet/ops/pool.py), on cases.POOL_CASES (overlapping windows, padding, ties)."""

from __future__ import annotations

import cases
import numpy
import pytest

from gpunet.ops import pool


@pytest.mark.ops("max_pool2d", cases=cases.POOL_CASES)
def test_max_pool2d(impl, case, dtype):
    cases.check_pool("max_pool2d", impl.op("max_pool2d"), case, dtype, impl.put, impl.get)


@pytest.mark.ops("avg_pool2d", cases=cases.POOL_CASES)
def test_avg_pool2d(impl, case, dtype):
    cases.check_pool("avg_pool2d", impl.op("avg_pool2d"), case, dtype, impl.put, impl.get)


# overlapping windows, padding, an asymmetric kernel (distinct values: no ties for the differences)
GRAD_CASES = {name: cases.POOL_CASES[name] for name in ("3x3_s1_pad1", "asym_kernel_stride_pad")}


def _numerical_gradcheck(op, obj, case, put, get):
    """float64 central differences of ``sum(forward(x) * gy)`` against ``backward(gy)``."""
    rng = numpy.random.default_rng(1)
    x = rng.permutation(numpy.prod(case.x)).reshape(case.x).astype(numpy.float64) * 0.01  # distinct values
    out_hw = pool.check_pool2d_input(op, x, case.kernel, case.stride, case.padding)
    geo = (case.kernel, case.stride, case.padding, out_hw)
    y, state = obj.forward(put(x), *geo, True)
    gy = rng.standard_normal(get(y).shape)
    analytic = get(obj.backward(put(gy), state, x.shape))
    eps, numeric = 1e-4, numpy.zeros_like(x)
    for k in range(x.size):
        for sign in (1, -1):
            xs = x.copy()
            xs.flat[k] += sign * eps
            numeric.flat[k] += sign * float((get(obj.forward(put(xs), *geo, False)[0]) * gy).sum())
    numeric /= 2 * eps
    err = numpy.abs(analytic - numeric).max()
    assert err < 1e-6, f"{op} gradcheck: expected backward == central differences, got max error {err:.3g}"


@pytest.mark.ops("max_pool2d", cases=GRAD_CASES)
def test_max_pool2d_gradcheck(impl, case):
    _numerical_gradcheck("max_pool2d", impl.op("max_pool2d"), case, impl.put, impl.get)


@pytest.mark.ops("avg_pool2d", cases=GRAD_CASES)
def test_avg_pool2d_gradcheck(impl, case):
    _numerical_gradcheck("avg_pool2d", impl.op("avg_pool2d"), case, impl.put, impl.get)
