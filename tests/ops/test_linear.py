"""The linear implementation objects on every implementation (gpunet/ops/linear.py and the NumPy
fast path gpunet/ops/linear_cpu.py), against einsum definitions, at one and two threads; and a
float64 numerical gradient check."""

from __future__ import annotations

import cases
import numba
import numpy
import pytest

import gpunet
from gpunet.ops import linear_cpu


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.ops("linear", cases=cases.LINEAR_CASES)
def test_linear(impl, case, dtype, threads):
    with gpunet.using(threads=min(threads, numba.config.NUMBA_NUM_THREADS)):
        cases.check_linear(impl.op("linear"), case, dtype, impl.put, impl.get)


@pytest.mark.ops("linear", cases=cases.up_to(cases.LINEAR_CASES, "small"))
def test_linear_split_into_parts_of_any_size(impl, case, monkeypatch):
    """The fast path's row split at every size (a part of one row, empty parts impossible)."""
    monkeypatch.setattr(linear_cpu, "SPLIT_MIN", 0)
    with gpunet.using(threads=min(2, numba.config.NUMBA_NUM_THREADS)):
        cases.check_linear(impl.op("linear"), case, numpy.float64, impl.put, impl.get)


@pytest.mark.ops("linear", cases={"split": cases.LINEAR_CASES["odd_rows_split"]._replace(inputs=6, outputs=4)})
def test_linear_gradcheck(impl, case, monkeypatch):
    """float64 central differences of ``sum(forward(x, w, b) * gy)`` against ``backward(gy)``."""
    monkeypatch.setattr(linear_cpu, "SPLIT_MIN", 0)
    op, put = impl.op("linear"), impl.put
    with gpunet.using(threads=min(2, numba.config.NUMBA_NUM_THREADS)):
        cases.gradcheck_linear(lambda x, w, b: op.forward(put(x), put(w), put(b)),
                               lambda gy, x, w, b: op.backward(put(gy), put(x), put(w), (True, True, True)),
                               case, impl.get)


def test_the_fast_path_leaves_mixed_dtypes_and_other_kinds_to_the_reference():
    x, w = numpy.ones((8, 400), numpy.float32), numpy.ones((300, 400), numpy.float64)
    assert linear_cpu._parts(8, x.size * 300, x, w) == 1
    xi, wi = numpy.ones((8, 400), numpy.int64), numpy.ones((300, 400), numpy.int64)
    with gpunet.using(threads=2):
        y = linear_cpu.COMPILED.forward(xi, wi, None)
    assert y.dtype == numpy.int64 and (y == 400).all()
