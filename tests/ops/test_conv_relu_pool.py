"""conv2d_relu_pool2d on every implementation, against the spec: the conv2d reference, then the
ReLU-pooling reference (gpunet/ops/conv2d.py, gpunet/ops/relu_pool.py), over convolutions with
stride, padding and dilation, max and average pooling with overlap, padding and ragged edges,
and a batch cut in more chunks than threads."""

from __future__ import annotations

from typing import NamedTuple

import cases
import numba
import numpy
import pytest

import gpunet
from gpunet.ops import conv2d, conv2d_cpu, conv_relu_pool, conv_relu_pool_cpu, relu_pool

OP = "conv2d_relu_pool2d"
TOP = min(2, numba.config.NUMBA_NUM_THREADS)


class Case(NamedTuple):
    conv: cases.Conv
    pool: tuple[str, tuple[int, int], tuple[int, int], tuple[int, int]]
    tier: str = "small"


CASES: dict[str, Case] = {
    "lenet_c1_max_2x2": Case(cases.Conv((4, 1, 32, 32), (6, 1, 5, 5)), ("max", (2, 2), (2, 2), (0, 0))),
    "pad1_max_3x3_s2_p1": Case(cases.Conv((2, 3, 7, 6), (5, 3, 3, 3), (1, 1), (1, 1)), ("max", (3, 3), (2, 2), (1, 1))),
    "strided_dilated_avg": Case(cases.Conv((2, 2, 10, 11), (3, 2, 3, 3), (1, 2), (2, 1), (2, 1)),
                                ("avg", (2, 2), (1, 1), (0, 0))),
    "avg_asym_pad": Case(cases.Conv((3, 2, 9, 8), (4, 2, 2, 3), (1, 1), (0, 1)), ("avg", (3, 2), (2, 1), (1, 1))),
    "max_ragged_edges": Case(cases.Conv((2, 3, 9, 9), (2, 3, 2, 2)), ("max", (3, 3), (3, 3), (0, 0)), "tiny"),
    "batch_over_chunks": Case(cases.Conv((37, 1, 6, 6), (2, 1, 3, 3)), ("max", (2, 2), (2, 2), (0, 0))),
}
SPEC_POOL = {"max": relu_pool.MAX_REFERENCE, "avg": relu_pool.AVG_REFERENCE}
ALL_NEEDS = [(True, True, True), (False, True, True), (True, False, False), (True, True, False)]


def _inputs(case: Case, dtype, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal(case.conv.x).astype(dtype)
    w = rng.standard_normal(case.conv.w).astype(dtype)
    b = rng.standard_normal(case.conv.w[0]).astype(dtype)
    return x, w, b


def _spec(case: Case, x, w, b, gy, needs):
    """The two references one after the other: the value and ``(gx, gw, gb)``."""
    z, conv_state = conv2d.IM2COL.forward(x, w, b, *case.conv.geometry, True, True)
    out_hw = conv_relu_pool_cpu.pool_output(z.shape[2:], case.pool)
    y, pool_state = SPEC_POOL[case.pool[0]].forward(z, *case.pool[1:], out_hw, True)
    if gy is None:
        return y, None
    gz = SPEC_POOL[case.pool[0]].backward(gy, pool_state, z.shape)
    return y, conv2d.IM2COL.backward(gz, conv_state, needs)


@pytest.mark.parametrize("needs", ALL_NEEDS, ids=["all", "first_layer", "input_only", "no_bias_grad"])
@pytest.mark.ops(OP, cases=CASES)
def test_equals_conv_then_relu_pool(impl, case, dtype, needs):
    x, w, b = _inputs(case, dtype)
    obj = impl.op(OP)
    y_want, _ = _spec(case, x, w, b, None, needs)
    gy = numpy.random.default_rng(5).standard_normal(y_want.shape).astype(dtype)
    _, grads_want = _spec(case, x, w, b, gy, needs)
    y, state = obj.forward(impl.put(x), impl.put(w), impl.put(b), *case.conv.geometry, case.pool, True, needs[0])
    cases.assert_close(f"{OP} forward", impl.get(y), y_want, dtype)
    grads = obj.backward(impl.put(gy), state, needs)
    for name, got, want, need in zip(("gx", "gw", "gb"), grads, grads_want, needs):
        if need:
            cases.assert_close(f"{OP} {name}", impl.get(got), want, dtype)
    assert obj.forward(impl.put(x), impl.put(w), None, *case.conv.geometry, case.pool, False, False)[1] is None


@pytest.mark.ops(OP, cases={k: CASES[k] for k in ("pad1_max_3x3_s2_p1", "avg_asym_pad")})
def test_without_bias(impl, case, dtype):
    x, w, _ = _inputs(case, dtype)
    z, conv_state = conv2d.IM2COL.forward(x, w, None, *case.conv.geometry, True, True)
    out_hw = conv_relu_pool_cpu.pool_output(z.shape[2:], case.pool)
    y_want, pool_state = SPEC_POOL[case.pool[0]].forward(z, *case.pool[1:], out_hw, True)
    gy = numpy.ones(y_want.shape, dtype)
    want = conv2d.IM2COL.backward(SPEC_POOL[case.pool[0]].backward(gy, pool_state, z.shape), conv_state,
                                  (True, True, False))
    y, state = impl.op(OP).forward(impl.put(x), impl.put(w), None, *case.conv.geometry, case.pool, True, True)
    cases.assert_close(f"{OP} forward", impl.get(y), y_want, dtype)
    gx, gw, gb = impl.op(OP).backward(impl.put(gy), state, (True, True, False))
    cases.assert_close(f"{OP} gx", impl.get(gx), want[0], dtype)
    cases.assert_close(f"{OP} gw", impl.get(gw), want[1], dtype)
    assert gb is None


GRAD_CASES = {
    "max_3x3_s2_p1": Case(cases.Conv((1, 2, 6, 5), (2, 2, 3, 3), (1, 1), (1, 1)), ("max", (3, 3), (2, 2), (1, 1))),
    "avg_2x2_s1": Case(cases.Conv((2, 1, 5, 6), (2, 1, 2, 3), (1, 1), (0, 1)), ("avg", (2, 2), (1, 1), (0, 0))),
}


@pytest.mark.ops(OP, cases=GRAD_CASES)
def test_gradcheck(impl, case):
    """float64 central differences of ``sum(forward * gy)`` for x, w and b (random inputs: no
    conv output within eps of the ReLU's kink, no tie within eps)."""
    x, w, b = _inputs(case, numpy.float64, seed=2)
    obj = impl.op(OP)
    y, state = obj.forward(impl.put(x), impl.put(w), impl.put(b), *case.conv.geometry, case.pool, True, True)
    gy = numpy.random.default_rng(3).standard_normal(impl.get(y).shape)
    analytic = [impl.get(g) for g in obj.backward(impl.put(gy), state, (True, True, True))]
    arrays, eps = [x, w, b], 1e-6
    for which, array in enumerate(arrays):
        numeric = numpy.zeros_like(array)
        for k in range(array.size):
            for sign in (1, -1):
                moved = [a.copy() for a in arrays]
                moved[which].flat[k] += sign * eps
                out = obj.forward(*map(impl.put, moved), *case.conv.geometry, case.pool, False, False)[0]
                numeric.flat[k] += sign * float((impl.get(out) * gy).sum())
        numeric /= 2 * eps
        err = numpy.abs(analytic[which] - numeric).max()
        assert err < 1e-5, f"{OP} gradcheck of {'xwb'[which]}: max error {err:.3g}"


@pytest.mark.parametrize("name", ["lenet_c1_max_2x2", "avg_asym_pad", "batch_over_chunks"])
def test_compiled_is_bit_identical_at_one_and_two_threads(monkeypatch, name):
    monkeypatch.setattr(conv2d_cpu, "SPLIT_MIN", 0)
    case = CASES[name]
    x, w, b = _inputs(case, numpy.float32)
    results = []
    for threads in (1, TOP):
        with gpunet.using(threads=threads):
            y, state = conv_relu_pool.COMPILED.forward(x, w, b, *case.conv.geometry, case.pool, True, True)
            grads = conv_relu_pool.COMPILED.backward(numpy.ones_like(y), state, (True, True, True))
        results.append((y, *grads))
    for one, two in zip(*results):
        numpy.testing.assert_array_equal(two, one, err_msg=f"{OP}: {TOP} threads differ from 1")


def test_compiled_float16_and_mixed_dtypes_run_the_reference():
    case = CASES["pad1_max_3x3_s2_p1"]
    for dtypes in (("float16",) * 3, ("float32", "float64", "float32")):
        x, w, b = (a.astype(d) for a, d in zip(_inputs(case, numpy.float64), dtypes))
        y, state = conv_relu_pool.COMPILED.forward(x, w, b, *case.conv.geometry, case.pool, True, True)
        want, _ = conv_relu_pool.REFERENCE.forward(x, w, b, *case.conv.geometry, case.pool, True, True)
        assert state[0] == "reference"
        numpy.testing.assert_array_equal(y, want)
        conv_relu_pool.COMPILED.backward(numpy.ones_like(y), state, (True, True, True))


def test_the_conv_output_is_not_kept():
    """What the compiled op saves: the columns, the weight, the pooling's argmax (int32, pooled
    size), nothing of the size of the conv output."""
    case = CASES["lenet_c1_max_2x2"]
    x, w, b = _inputs(case, numpy.float32)
    y, state = conv_relu_pool.COMPILED.forward(x, w, b, *case.conv.geometry, case.pool, True, False)
    cols, _, _, index, *_ = state[1]
    assert index.shape == y.shape and index.dtype == numpy.int32
    assert cols.shape == (4, 25, 28, 28)
