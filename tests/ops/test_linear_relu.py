"""linear_relu (``relu(x @ W.T + b)`` as one op) on every implementation, against einsum
definitions with the ReLU mask applied, at one and two threads, every subset of gradients; a
float64 numerical gradient check; and the fallbacks."""

from __future__ import annotations

import cases
import numba
import numpy
import pytest

import gpunet
from gpunet.ops import linear_cpu


def _check(obj, case, dtype, put, get, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((case.rows, case.inputs)).astype(dtype)
    w = (rng.standard_normal((case.outputs, case.inputs)) * 0.5).astype(dtype)
    b = rng.standard_normal(case.outputs).astype(dtype) if case.bias else None
    z = cases.linear_definition(x, w, b).astype(dtype)
    mask = z > 0
    y, state = obj.forward(put(x), put(w), put(b) if b is not None else None)
    cases.assert_close("linear_relu forward", get(y), z * mask, dtype)
    assert mask.any() and not mask.all(), "the case must have both signs"
    gy = rng.standard_normal(z.shape).astype(dtype)
    g = gy * mask
    want = (numpy.einsum("mo,oi->mi", g, w), numpy.einsum("mo,mi->oi", g, x), g.sum(axis=0))
    for needs in ((True, True, case.bias), (True, False, False), (False, True, case.bias), (False, False, True)):
        got = obj.backward(put(gy), state, put(x) if needs[1] else None, put(w) if needs[0] else None, needs)
        for name, need, gr, ref in zip(("gx", "gw", "gb"), needs, got, want):
            if not need:
                assert gr is None, f"linear_relu backward: {name} not asked for, got an array"
            else:
                cases.assert_close(f"linear_relu backward {name} (needs {needs})", get(gr), ref.astype(dtype), dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.ops("linear_relu", cases=cases.LINEAR_CASES)
def test_linear_relu(impl, case, dtype, threads):
    with gpunet.using(threads=min(threads, numba.config.NUMBA_NUM_THREADS)):
        _check(impl.op("linear_relu"), case, dtype, impl.put, impl.get)


@pytest.mark.ops("linear_relu", cases=cases.up_to(cases.LINEAR_CASES, "small"))
def test_linear_relu_split_into_parts_of_any_size(impl, case, monkeypatch):
    monkeypatch.setattr(linear_cpu, "SPLIT_MIN", 0)
    with gpunet.using(threads=min(2, numba.config.NUMBA_NUM_THREADS)):
        _check(impl.op("linear_relu"), case, numpy.float64, impl.put, impl.get)


@pytest.mark.ops("linear_relu", cases={"split": cases.LINEAR_CASES["odd_rows_split"]._replace(inputs=6, outputs=4)})
def test_linear_relu_gradcheck(impl, case, monkeypatch):
    """float64 central differences of ``sum(forward(x, w, b) * gy)`` against ``backward(gy)`` (no
    pre-activation within eps of the kink)."""
    monkeypatch.setattr(linear_cpu, "SPLIT_MIN", 0)
    op, put = impl.op("linear_relu"), impl.put

    def backward(gy, x, w, b):
        assert numpy.abs(x @ w.T + b).min() > 1e-3
        return op.backward(put(gy), op.forward(put(x), put(w), put(b))[1], put(x), put(w), (True, True, True))

    with gpunet.using(threads=min(2, numba.config.NUMBA_NUM_THREADS)):
        cases.gradcheck_linear(lambda x, w, b: op.forward(put(x), put(w), put(b))[0], backward, case, impl.get)


def test_compiled_relu_semantics_and_fallbacks():
    """NaN stays NaN and negatives become -0.0 (the ReLU reference's ``x * mask``); float16 and
    mixed dtypes run the reference."""
    x = numpy.array([[1.0, -1.0, 0.0]], numpy.float32)
    w, b = numpy.eye(3, dtype=numpy.float32), numpy.array([0, 0, numpy.nan], numpy.float32)
    y, _ = linear_cpu.COMPILED_RELU.forward(x, w, b)
    assert y[0, 0] == 1 and y[0, 1] == 0 and numpy.signbit(y[0, 1]) and numpy.isnan(y[0, 2])
    for xh, wh in ((x.astype(numpy.float16), w.astype(numpy.float16)), (x, w.astype(numpy.float64))):
        y, state = linear_cpu.COMPILED_RELU.forward(xh, wh, None)
        y = numpy.nan_to_num(y)
        assert state[0] == "reference"
        gx, gw, gb = linear_cpu.COMPILED_RELU.backward(numpy.ones_like(y), state, xh, wh, (True, True, False))
        assert gx.shape == xh.shape and gw.shape == wh.shape and gb is None
