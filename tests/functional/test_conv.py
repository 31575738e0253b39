"""conv2d: forward against a nested-loop reference, gradients, errors, the registry.

The cases are the one conv table of the suite (tests/ops/cases.py); the hot ops of every
implementation are compared with the reference in tests/ops.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpunet
from gpunet import functional as F
from gpunet.autograd import OpError, Tensor
from gpunet.ops import conv2d as conv_impl
from gpunet.testing import gradcheck

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))
import cases  # noqa: E402

conv_reference = cases.conv2d_definition  # the direct definition (nested loops)
CASES = [(c.x, c.w, c.stride, c.padding, c.dilation) for c in cases.CONV_CASES.values()]  # the one conv table
IDS = list(cases.CONV_CASES)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CASES, ids=IDS)
def test_forward_matches_reference(x_shape, w_shape, stride, padding, dilation, bias):
    rng = numpy.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if bias else None
    y = F.conv2d(Tensor(x), Tensor(w), Tensor(b) if bias else None, stride, padding, dilation)
    numpy.testing.assert_allclose(y.data, conv_reference(x, w, b, stride, padding, dilation),
                                  rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CASES, ids=IDS)
def test_reference_backward_is_the_exact_vjp(x_shape, w_shape, stride, padding, dilation):
    """The reference's backward ops are the exact vector-Jacobian products of the definition
    (every other implementation is compared with them in tests/ops)."""
    rng = numpy.random.default_rng(2)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    gy = rng.standard_normal(conv_impl.conv2d_forward(x, w, stride, padding, dilation).shape)
    gx = conv_impl.conv2d_backward_input(gy, w, x.shape, stride, padding, dilation)
    gw = conv_impl.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation)
    # conv is bilinear: <gy, conv(x, w)> = <gx, x> = <gw, w>
    total = float((gy * conv_reference(x, w, None, stride, padding, dilation)).sum())
    assert float((gx * x).sum()) == pytest.approx(total, rel=1e-10)
    assert float((gw * w).sum()) == pytest.approx(total, rel=1e-10)
    # and column by column: the gradient for a unit input is the reference output's response
    e = numpy.zeros_like(x)
    e.flat[x.size // 2] = 1.0
    assert float(gx.flat[x.size // 2]) == pytest.approx(
        float((gy * conv_reference(e, w, None, stride, padding, dilation)).sum()), abs=1e-10)


@given(n=st.integers(1, 2), c=st.integers(1, 3), c_out=st.integers(1, 3), h=st.integers(1, 8),
       w=st.integers(1, 8), kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3),
       sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2), dh=st.integers(1, 2),
       dw=st.integers(1, 2), seed=st.integers(0, 2**16))
@settings(max_examples=60, deadline=None)
def test_forward_property(n, c, c_out, h, w, kh, kw, sh, sw, ph, pw, dh, dw, seed):
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    rng = numpy.random.default_rng(seed)
    x, k = rng.standard_normal((n, c, h, w)), rng.standard_normal((c_out, c, kh, kw))
    args = ((sh, sw), (ph, pw), (dh, dw))
    if oh <= 0 or ow <= 0:
        with pytest.raises(OpError, match="output size must be positive"):
            F.conv2d(Tensor(x), Tensor(k), None, *args)
        return
    y = F.conv2d(Tensor(x), Tensor(k), None, *args)
    numpy.testing.assert_allclose(y.data, conv_reference(x, k, None, *args), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("stride, padding, dilation", [(1, 0, 1), (1, 1, 1), (2, 1, 1), ((1, 2), (0, 1), (2, 1))])
def test_gradcheck_all_inputs(stride, padding, dilation):
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((2, 2, 6, 5))
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation), [x, w, b])
    assert gradcheck(lambda x, w: F.conv2d(x, w, None, stride, padding, dilation), [x, w])


def test_float32_keeps_dtype_and_matches_float64():
    rng = numpy.random.default_rng(4)
    x, w = rng.standard_normal((3, 2, 9, 9)), rng.standard_normal((4, 2, 3, 3))
    y32 = F.conv2d(gpunet.tensor(x), gpunet.tensor(w), stride=1, padding=1)
    assert y32.dtype == numpy.float32
    numpy.testing.assert_allclose(y32.data, conv_reference(x, w, None, (1, 1), (1, 1), (1, 1)), rtol=1e-4,
                                  atol=1e-4)


@pytest.mark.parametrize("x_grad", [True, False])
def test_wide_and_narrow_columns_agree(x_grad):
    """The Function uses wide columns when the input needs a gradient, strided rows otherwise."""
    rng = numpy.random.default_rng(7)
    x, w, b = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    xt, wt = Tensor(x, requires_grad=x_grad), Tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, Tensor(b), 1, 1)
    numpy.testing.assert_allclose(y.data, conv_reference(x, w, b, (1, 1), (1, 1), (1, 1)), rtol=1e-12)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    numpy.testing.assert_allclose(wt.grad, conv_impl.conv2d_backward_weight(x, gy, w.shape, (1, 1), (1, 1), (1, 1)),
                                  rtol=1e-12)
    assert (xt.grad is not None) == x_grad


def test_only_needed_gradients_are_computed():
    rng = numpy.random.default_rng(5)
    x = Tensor(rng.standard_normal((2, 1, 6, 6)))
    w = Tensor(rng.standard_normal((2, 1, 3, 3)), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad.shape == (2, 1, 3, 3)
    numpy.testing.assert_allclose(w.grad, numpy.broadcast_to(
        numpy.lib.stride_tricks.sliding_window_view(x.data, (3, 3), axis=(2, 3)).sum(axis=(0, 2, 3)),
        (2, 1, 3, 3)), rtol=1e-12)


def test_no_grad_forward_matches():
    rng = numpy.random.default_rng(6)
    x, w = Tensor(rng.standard_normal((2, 2, 7, 7))), Tensor(rng.standard_normal((3, 2, 3, 3)))
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    for stride in (1, 2):
        with gpunet.no_grad():
            y = F.conv2d(x, w, b, stride=stride, padding=1)
        numpy.testing.assert_allclose(y.data, F.conv2d(x, w, b, stride=stride, padding=1).data, rtol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, b_shape, kwargs, message", [
    ((1, 3, 8), (2, 3, 3, 3), None, {}, "expected input of 4 dimensions"),
    ((1, 3, 8, 8), (2, 3, 3), None, {}, "expected weight of 4 dimensions"),
    ((1, 3, 8, 8), (2, 4, 3, 3), None, {}, "expects 4 input channels, got input"),
    ((1, 3, 4, 4), (2, 3, 5, 5), None, {}, "output size must be positive"),
    ((1, 3, 8, 8), (2, 3, 3, 3), (3,), {}, "expected bias of shape \\(2,\\)"),
    ((1, 3, 8, 8), (2, 3, 3, 3), None, {"stride": 0}, "expected stride >= 1"),
    ((1, 3, 8, 8), (2, 3, 3, 3), None, {"padding": -1}, "expected padding >= 0"),
    ((1, 3, 8, 8), (2, 3, 3, 3), None, {"dilation": (1, 2, 3)}, "dilation as an int or a pair"),
])
def test_errors_name_op_and_expected(x_shape, w_shape, b_shape, kwargs, message):
    x, w = Tensor(numpy.zeros(x_shape)), Tensor(numpy.zeros(w_shape))
    b = Tensor(numpy.zeros(b_shape)) if b_shape else None
    with pytest.raises(OpError, match=f"conv2d.*{message}"):
        F.conv2d(x, w, b, **kwargs)


def test_dtype_mismatch_is_an_error():
    x = Tensor(numpy.zeros((1, 1, 4, 4), dtype=numpy.float32))
    w = Tensor(numpy.zeros((1, 1, 3, 3), dtype=numpy.float64))
    with pytest.raises(OpError, match="conv2d: expected floating input and weight of the same dtype"):
        F.conv2d(x, w)


def test_asks_the_registry_once_per_call(monkeypatch):
    """The Function asks the registry once, so GPU kernels take over automatically."""
    from gpunet.ops import registry

    asked = []
    real = registry.lookup

    def spy(op, device):
        asked.append((op, device))
        return real(op, device)

    monkeypatch.setattr(registry, "lookup", spy)
    x = Tensor(numpy.ones((1, 1, 4, 4)), requires_grad=True)
    w = Tensor(numpy.ones((1, 1, 3, 3)), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert asked == [("conv2d", "numpy")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CASES)
def test_fast_path_equals_reference(x_shape, w_shape, stride, padding, dilation, dtype):
    """numpy-fast (numba packing + one GEMM) against numpy-ref: the three hot ops and the
    conv2d Function's gradients, both through ``gpunet.using(fast_paths=...)``."""
    from gpunet.ops import conv2d_cpu, registry

    rng = numpy.random.default_rng(8)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    gy = rng.standard_normal(conv_impl.conv2d_forward(x, w, stride, padding, dilation).shape).astype(dtype)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == "float64" else {"rtol": 1e-4, "atol": 1e-4}
    args = (stride, padding, dilation)
    for name, ref_args, fast_args in [
            ("conv2d_forward", (x, w, *args), (x, w, *args)),
            ("conv2d_backward_input", (gy, w, x.shape, *args), (gy, w, x.shape, *args)),
            ("conv2d_backward_weight", (x, gy, w.shape, *args), (x, gy, w.shape, *args))]:
        want = registry.get(name, "numpy-ref").load()(*ref_args)
        got = registry.get(name, "numpy-fast").load()(*fast_args)
        assert got.dtype == want.dtype == numpy.dtype(dtype)
        numpy.testing.assert_allclose(got, want, err_msg=name, **tol)
    results = []
    for fast in (True, False):
        with gpunet.using(fast_paths=fast):
            assert isinstance(registry.lookup("conv2d", "numpy"), conv2d_cpu.CompiledConv2d) == fast
            xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
            y = F.conv2d(xt, wt, bt, *args)
            y.backward(gy)
            results.append((y.data, xt.grad, wt.grad, bt.grad))
    for got, want in zip(*results):
        assert got.dtype == numpy.dtype(dtype)
        numpy.testing.assert_allclose(got, want, **tol)


def test_fast_path_propagates_nan_and_skips_unneeded_input_gradient():
    x = numpy.ones((2, 2, 6, 6))
    x[1, 0, 2, 3] = numpy.nan
    w = numpy.ones((3, 2, 3, 3))
    xt, wt = Tensor(x), Tensor(w, requires_grad=True)  # a first layer: no input gradient
    y = F.conv2d(xt, wt, None, 1, 1)
    assert numpy.isnan(y.data[1, :, 1:4, 2:5]).all() and not numpy.isnan(y.data[0]).any()
    y.sum().backward()
    assert xt.grad is None and numpy.isnan(wt.grad[:, 0]).all() and not numpy.isnan(wt.grad[:, 1]).any()
