"""The max_pool2d / avg_pool2d implementation objects on every implementation, against the
reference (gpunet/ops/pool.py), on cases.POOL_CASES (overlapping windows, padding, ties)."""

from __future__ import annotations

import cases
import pytest


@pytest.mark.ops("max_pool2d", cases=cases.POOL_CASES)
def test_max_pool2d(impl, case, dtype):
    cases.check_pool("max_pool2d", impl.op("max_pool2d"), case, dtype, impl.put, impl.get)


@pytest.mark.ops("avg_pool2d", cases=cases.POOL_CASES)
def test_avg_pool2d(impl, case, dtype):
    cases.check_pool("avg_pool2d", impl.op("avg_pool2d"), case, dtype, impl.put, impl.get)


# overlapping windows, padding, an asymmetric kernel (distinct values: no ties for the differences)
GRAD_CASES = {name: cases.POOL_CASES[name] for name in ("3x3_s1_pad1", "asym_kernel_stride_pad")}


@pytest.mark.ops("max_pool2d", cases=GRAD_CASES)
def test_max_pool2d_gradcheck(impl, case):
    cases.gradcheck_pool("max_pool2d", impl.op("max_pool2d"), case, impl.put, impl.get)


@pytest.mark.ops("avg_pool2d", cases=GRAD_CASES)
def test_avg_pool2d_gradcheck(impl, case):
    cases.gradcheck_pool("avg_pool2d", impl.op("avg_pool2d"), case, impl.put, impl.get)
