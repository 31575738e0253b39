"""The fused training-step ops (``sgd_step``, ``relu``, ``cross_entropy``; kernels/fused.cu and
gpunet/cuda/numba_fused.py) on every implementation: forward against the NumPy reference
(gpunet/ops/fused.py) and a plain formula, backward against float64 central differences, and
the launchers' argument checks."""

from __future__ import annotations

import cases
import numpy
import pytest

import gpunet
from gpunet.ops import fused

SGD_CASES = {
    "plain": dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    "momentum": dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    "dampening_decay": dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01, nesterov=False,
                            maximize=False),
    "nesterov_maximize": dict(lr=0.02, momentum=0.9, dampening=0.0, weight_decay=0.1, nesterov=True,
                              maximize=True),
}


def _sgd_plain(p, grads, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """PyTorch's SGD, written out independently of the reference."""
    p, buf = p.copy(), None
    for g in grads:
        d = (-g if maximize else g) + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p, buf


@pytest.mark.ops("sgd_step")
@pytest.mark.parametrize("name", list(SGD_CASES))
def test_sgd_step(impl, name, dtype):
    opts = SGD_CASES[name]
    rng = numpy.random.default_rng(3)
    p0 = rng.standard_normal((7, 5)).astype(dtype)
    grads = [rng.standard_normal((7, 5)).astype(dtype) for _ in range(3)]
    p, buf = impl.put(p0), None
    for g in grads:
        buf = impl.op("sgd_step")(p, impl.put(g), buf, **opts)
    ref_p, ref_buf = p0.copy(), None
    for g in grads:
        ref_buf = fused.sgd_step(ref_p, g, ref_buf, **opts)
    cases.assert_close("sgd_step p", impl.get(p), ref_p, dtype)
    plain_p, plain_buf = _sgd_plain(p0, grads, **opts)
    cases.assert_close("sgd_step p vs formula", impl.get(p), plain_p.astype(dtype), dtype, scale=10)
    if opts["momentum"]:
        cases.assert_close("sgd_step buf", impl.get(buf), ref_buf, dtype)
    else:
        assert buf is None


@pytest.mark.ops("sgd_step", impls=("numpy-fast",))
@pytest.mark.parametrize("name", list(SGD_CASES))
def test_sgd_step_large_parameter_in_parallel_equals_reference(impl, name, dtype):
    """A parameter above the parallel threshold, at two threads: the same bits as the reference
    (one pass with the reference's operation order, scalars in the parameter's dtype)."""
    opts = SGD_CASES[name]
    rng = numpy.random.default_rng(6)
    p0 = rng.standard_normal((600, 400)).astype(dtype)
    grads = [rng.standard_normal(p0.shape).astype(dtype) for _ in range(3)]
    p, ref_p, buf, ref_buf = p0.copy(), p0.copy(), None, None
    with gpunet.using(threads=2):
        for g in grads:
            buf = impl.op("sgd_step")(p, g, buf, **opts)
            ref_buf = fused.sgd_step(ref_p, g, ref_buf, **opts)
    numpy.testing.assert_array_equal(p, ref_p, err_msg=f"sgd_step {name}: p")
    if opts["momentum"]:
        numpy.testing.assert_array_equal(buf, ref_buf, err_msg=f"sgd_step {name}: buf")


@pytest.mark.ops("sgd_step")
def test_sgd_step_non_contiguous(impl):
    """A strided parameter and a zero-stride gradient are updated like contiguous ones."""
    rng = numpy.random.default_rng(4)
    base, gbase = rng.standard_normal((6, 8)), rng.standard_normal((6, 8))
    p, grad = impl.put(base)[:, ::2], impl.put(gbase)[:, 1::2]
    want = base[:, ::2].copy()
    opts = SGD_CASES["dampening_decay"]
    fused.sgd_step(want, gbase[:, 1::2], None, **opts)
    buf = impl.op("sgd_step")(p, grad, None, **opts)
    cases.assert_close("sgd_step strided p", impl.get(p), want, numpy.float64)
    cases.assert_close("sgd_step buf", impl.get(buf), gbase[:, 1::2] + 0.01 * base[:, ::2], numpy.float64)


@pytest.mark.ops("relu")
def test_relu(impl, dtype):
    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((4, 3, 5)).astype(dtype)
    x[0, 0, :2] = 0
    relu = impl.op("relu")
    y, state = relu.forward(impl.put(x))
    cases.assert_close("relu forward", impl.get(y), numpy.maximum(x, 0), dtype)
    gy = rng.standard_normal(x.shape).astype(dtype)
    gx = impl.get(relu.backward(state, impl.put(gy)))
    cases.assert_close("relu backward", gx, numpy.where(x > 0, gy, 0).astype(dtype), dtype)


@pytest.mark.ops("relu")
@pytest.mark.parametrize("threads", [1, 2])
def test_relu_large(impl, dtype, threads):
    """The NumPy paths on arrays above the compiled path's size threshold (serial and parallel
    compilations), NaN, infinities and signed zeros included: the reference's ``x * (x > 0)``
    exactly (the CUDA kernels, emulated, compute ``max(x, 0)`` and are covered by test_relu)."""
    if impl.id not in ("numpy-ref", "numpy-fast"):
        pytest.skip("special values: the NumPy paths' arithmetic")
    rng = numpy.random.default_rng(7)
    x = rng.standard_normal((64, 6, 10, 10)).astype(dtype)
    x.flat[:6] = [numpy.nan, numpy.inf, -numpy.inf, 0.0, -0.0, -1.0]
    gy = rng.standard_normal(x.shape).astype(dtype)
    gy.flat[6] = numpy.nan
    relu = impl.op("relu")
    with gpunet.using(threads=threads):
        y, state = relu.forward(impl.put(x))
        gx = impl.get(relu.backward(state, impl.put(gy)))
    want = x * (x > 0)
    numpy.testing.assert_array_equal(impl.get(y), want)
    numpy.testing.assert_array_equal(numpy.signbit(impl.get(y)), numpy.signbit(want))
    numpy.testing.assert_array_equal(gx, gy * (x > 0))


@pytest.mark.ops("relu")
def test_relu_gradcheck(impl):
    rng = numpy.random.default_rng(6)
    x = rng.standard_normal((3, 7))
    x[numpy.abs(x) < 0.05] = 0.5  # away from the kink
    relu = impl.op("relu")
    gy = rng.standard_normal(x.shape)
    analytic = impl.get(relu.backward(relu.forward(impl.put(x))[1], impl.put(gy)))
    _compare_numeric("relu", lambda v: float((impl.get(relu.forward(impl.put(v))[0]) * gy).sum()), x, analytic)


def _compare_numeric(op, f, x, analytic, eps=1e-5):
    numeric = numpy.zeros_like(x)
    for k in range(x.size):
        for sign in (1, -1):
            xs = x.copy()
            xs.flat[k] += sign * eps
            numeric.flat[k] += sign * f(xs)
    numeric /= 2 * eps
    err = numpy.abs(analytic - numeric).max()
    assert err < 1e-6, f"{op} gradcheck: expected backward == central differences, got max error {err:.3g}"


# (rows, classes, weighted, label smoothing, reduction, ignored rows)
XENT_CASES = {
    "mean": (9, 5, False, 0.0, "mean", ()),
    "sum_weighted": (6, 4, True, 0.0, "sum", ()),
    "none_ignore": (7, 3, False, 0.0, "none", (1, 4)),
    "mean_weighted_smooth_ignore": (8, 6, True, 0.2, "mean", (0, 5)),
    "one_class_rows": (300, 2, False, 0.1, "mean", (7,)),  # more rows than one reduction block
}


def _xent_inputs(case, dtype, seed=7):
    rows, classes, weighted, eps, reduction, ignored = case
    rng = numpy.random.default_rng(seed)
    x = (rng.standard_normal((rows, classes)) * 3).astype(dtype)
    labels = rng.integers(0, classes, rows).astype(numpy.int64)
    labels[list(ignored)] = -100
    weight = rng.uniform(0.5, 2.0, classes).astype(dtype) if weighted else None
    return x, labels, weight, eps, reduction


def _xent_plain(x, labels, weight, eps, reduction):
    """PyTorch's cross-entropy, written out with float64 NumPy."""
    x = x.astype(numpy.float64)
    logp = x - numpy.log(numpy.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True)) - x.max(1, keepdims=True)
    c = x.shape[1]
    w = numpy.ones(c) if weight is None else weight.astype(numpy.float64)
    keep = labels != -100
    t = numpy.where(keep, labels, 0)
    rows = ((1 - eps) * w[t] * -logp[numpy.arange(len(t)), t] + eps / c * -(logp * w).sum(1)) * keep
    if reduction == "none":
        return rows
    return rows.sum() / (w[t] * keep).sum() if reduction == "mean" else rows.sum()


def _labels_put(impl):
    return numpy.array if impl.id == "raw-emu" else impl.put  # the emulator's guards are NaN (float)


@pytest.mark.ops("cross_entropy")
@pytest.mark.parametrize("name", list(XENT_CASES))
def test_cross_entropy(impl, name, dtype):
    x, labels, weight, eps, reduction = _xent_inputs(XENT_CASES[name], dtype)
    obj = impl.op("cross_entropy")
    w_dev = impl.put(weight) if weight is not None else None
    loss, state = obj.forward(impl.put(x), _labels_put(impl)(labels), w_dev, -100, eps, reduction)
    ref, ref_state = fused.CROSS_ENTROPY_REFERENCE.forward(x, labels, weight, -100, eps, reduction)
    got = impl.get(loss)
    cases.assert_close("cross_entropy forward", got, ref, dtype, scale=5)
    cases.assert_close("cross_entropy vs formula", got, _xent_plain(x, labels, weight, eps, reduction).astype(dtype),
                       dtype, scale=50)
    gy = numpy.random.default_rng(8).standard_normal(ref.shape).astype(dtype)
    gx = impl.get(obj.backward(impl.put(gy), state))
    cases.assert_close("cross_entropy backward", gx, fused.CROSS_ENTROPY_REFERENCE.backward(gy, ref_state), dtype,
                       scale=5)


@pytest.mark.ops("cross_entropy")
@pytest.mark.parametrize("name", ["mean_weighted_smooth_ignore", "none_ignore", "sum_weighted"])
def test_cross_entropy_gradcheck(impl, name):
    x, labels, weight, eps, reduction = _xent_inputs(XENT_CASES[name], numpy.float64)
    obj = impl.op("cross_entropy")
    w_dev = impl.put(weight) if weight is not None else None
    lab = _labels_put(impl)(labels)
    loss, state = obj.forward(impl.put(x), lab, w_dev, -100, eps, reduction)
    gy = numpy.random.default_rng(9).standard_normal(impl.get(loss).shape)
    analytic = impl.get(obj.backward(impl.put(gy), state))

    def f(v):
        return float((impl.get(obj.forward(impl.put(v), lab, w_dev, -100, eps, reduction)[0]) * gy).sum())

    _compare_numeric("cross_entropy", f, x, analytic)


@pytest.mark.ops("cross_entropy", impls=("raw-emu", "numba-sim", "cupy", "raw", "numba"))
def test_cross_entropy_out_of_range_labels_are_nan(impl):
    """Device implementations cannot raise without a host sync: such rows (and any reduction over
    them) are NaN, the other rows are unchanged."""
    x = numpy.random.default_rng(10).standard_normal((4, 3))
    labels = numpy.array([0, 3, -1, 2])
    obj = impl.op("cross_entropy")
    rows = impl.get(obj.forward(impl.put(x), _labels_put(impl)(labels), None, -100, 0.0, "none")[0])
    assert numpy.isnan(rows[[1, 2]]).all() and numpy.isfinite(rows[[0, 3]]).all(), rows
    mean = impl.get(obj.forward(impl.put(x), _labels_put(impl)(labels), None, -100, 0.0, "mean")[0])
    assert numpy.isnan(mean)


@pytest.mark.ops("sgd_step", "relu", "cross_entropy", impls=("raw-emu", "numba-sim"))
def test_launchers_check_arguments(impl):
    """Bad arguments are refused before any launch, with the op named."""
    f32, f64 = numpy.ones((2, 3), numpy.float32), numpy.ones((2, 3))
    with pytest.raises(TypeError, match="sgd_step"):
        impl.op("sgd_step")(impl.put(f32), impl.put(f64), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="sgd_step"):
        impl.op("sgd_step")(impl.put(f64), impl.put(numpy.ones((3, 2))), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="relu"):
        impl.op("relu").forward(impl.put(f64).astype(numpy.float16))
    xent = impl.op("cross_entropy")
    with pytest.raises(TypeError, match="cross_entropy"):
        xent.forward(impl.put(f64), impl.put(numpy.zeros(2)), None, -100, 0.0, "mean")
    with pytest.raises(ValueError, match="cross_entropy"):
        xent.forward(impl.put(f64), numpy.zeros(3, numpy.int64), None, -100, 0.0, "mean")
    with pytest.raises(ValueError, match="reduction"):
        xent.forward(impl.put(f64), numpy.zeros(2, numpy.int64), None, -100, 0.0, "avg")
    with pytest.raises(ValueError, match="weight"):
        xent.forward(impl.put(f64), numpy.zeros(2, numpy.int64), impl.put(numpy.ones(4)), -100, 0.0, "mean")
