"""conv2d: the three hot ops and the conv2d implementation objects on every implementation,
against the reference (gpunet/ops/conv2d.py), on the one conv case table (cases.CONV_CASES)."""

from __future__ import annotations

import cases
import numpy
import pytest

from gpunet.autograd import OpError
from gpunet.ops import catalog
from gpunet.ops import conv2d as conv_impl


@pytest.mark.ops(*catalog.CONV_OPS, cases=cases.CONV_CASES)
def test_hot_ops_match_the_reference(impl, case, dtype):
    cases.check_conv(impl, case, dtype, impl.put, impl.get)


@pytest.mark.parametrize("case", cases.CONV_CASES.values(), ids=list(cases.CONV_CASES))
def test_reference_is_the_direct_definition(case):
    rng = numpy.random.default_rng(1)
    x, w = rng.standard_normal(case.x), rng.standard_normal(case.w)
    numpy.testing.assert_allclose(conv_impl.conv2d_forward(x, w, *case.geometry),
                                  cases.conv2d_definition(x, w, None, *case.geometry), rtol=1e-12, atol=1e-12)


OBJECT_CASES = {name: cases.CONV_CASES[name] for name in ("s2_p1_k3", "stride_asym_pad", "lenet_c1")}


@pytest.mark.ops("conv2d", cases=OBJECT_CASES)
@pytest.mark.parametrize("need_x_grad", [True, False], ids=["x_grad", "no_x_grad"])
def test_conv2d_object_with_bias_and_a_zero_stride_gradient(impl, case, dtype, need_x_grad):
    """The object the conv2d Function runs, as ``F.conv2d(x, w, b).sum().backward()`` drives it:
    the output gradient is a zero-stride broadcast view (copied by the launchers)."""
    rng = numpy.random.default_rng(2)
    x, w = rng.standard_normal(case.x).astype(dtype), rng.standard_normal(case.w).astype(dtype)
    b = rng.standard_normal(case.w[0]).astype(dtype)
    ref = conv_impl.IM2COL
    y_ref, state_ref = ref.forward(x, w, b, *case.geometry, True, need_x_grad)
    obj = impl.op("conv2d")
    y, state = obj.forward(impl.put(x), impl.put(w), impl.put(b), *case.geometry, True, need_x_grad)
    cases.assert_close("conv2d forward + bias", impl.get(y), y_ref, dtype)
    gy = impl.xp.broadcast_to(impl.xp.ones((), dtype=dtype), y.shape)
    assert 0 in gy.strides
    needs = (need_x_grad, True, True)
    got = obj.backward(gy, state, needs)
    want = ref.backward(numpy.broadcast_to(numpy.ones((), dtype=dtype), y_ref.shape), state_ref, needs)
    for name, g, r in zip(("gx", "gw", "gb"), got, want):
        assert (g is None) == (r is None), name
        if r is not None:
            cases.assert_close(name, impl.get(g), r, dtype)


@pytest.mark.ops(*catalog.CONV_OPS)
def test_non_contiguous_inputs_are_copied(impl):
    rng = numpy.random.default_rng(1)
    x = impl.put(rng.standard_normal((6, 5, 3, 2))).transpose(3, 2, 1, 0)  # (2, 3, 5, 6), F-order
    w = impl.put(rng.standard_normal((3, 3, 2, 4)))[..., ::2]               # strided last axis
    xh, wh = impl.get(x), impl.get(w)
    geo = ((1, 1), (1, 0), (1, 1))
    y_ref = conv_impl.conv2d_forward(xh, wh, *geo)
    cases.assert_close("forward", impl.get(impl["conv2d_forward"](x, w, *geo)), y_ref, numpy.float64)
    gy = impl.put(rng.standard_normal(y_ref.shape[::-1])).T                # transposed
    gyh = impl.get(gy)
    cases.assert_close("backward_input", impl.get(impl["conv2d_backward_input"](gy, w, xh.shape, *geo)),
                       conv_impl.conv2d_backward_input(gyh, wh, xh.shape, *geo), numpy.float64)
    cases.assert_close("backward_weight", impl.get(impl["conv2d_backward_weight"](x, gy, wh.shape, *geo)),
                       conv_impl.conv2d_backward_weight(xh, gyh, wh.shape, *geo), numpy.float64)


# (call, message): the shared geometry check, reached through each launcher (raw and numba
# alike); every message names the op, what was expected and what it got
GEOMETRY_ERRORS = [
    (lambda f, x, w, gy: f["conv2d_forward"](x, w[:, :1], (1, 1), (0, 0), (1, 1)),
     r"conv2d_forward: weight \(3, 1, 3, 3\) expects 1 input channels, got input \(1, 2, 5, 5\) with 2"),
    (lambda f, x, w, gy: f["conv2d_forward"](x, w, (0, 1), (0, 0), (1, 1)),
     r"conv2d_forward: expected stride >= 1, got \(0, 1\)"),
    (lambda f, x, w, gy: f["conv2d_forward"](x, w, (1, 1), (0, -1), (1, 1)),
     r"conv2d_forward: expected padding >= 0, got \(0, -1\)"),
    (lambda f, x, w, gy: f["conv2d_forward"](x, w, (1, 1), (0, 0), (1,)),
     r"conv2d_forward: expected dilation as an int or a pair of ints, got \(1,\)"),
    (lambda f, x, w, gy: f["conv2d_forward"](x, w, (1, 1), (0, 0), (3, 3)),
     r"conv2d_forward: output size must be positive, got \(-1, -1\) for input \(1, 2, 5, 5\)"),
    (lambda f, x, w, gy: f["conv2d_forward"](x[0], w, (1, 1), (0, 0), (1, 1)),
     r"conv2d_forward: expected input of 4 dimensions \(N, C, H, W\), got shape \(2, 5, 5\)"),
    (lambda f, x, w, gy: f["conv2d_backward_input"](gy[:, :, :2], w, x.shape, (1, 1), (0, 0), (1, 1)),
     r"conv2d_backward_input: expected 'gy' of shape \(1, 3, 3, 3\) \(the output's\), got \(1, 3, 2, 3\)"),
    (lambda f, x, w, gy: f["conv2d_backward_weight"](x, gy, (3, 2, 3), (1, 1), (0, 0), (1, 1)),
     r"conv2d_backward_weight: expected weight of 4 dimensions \(C_out, C_in, kh, kw\), got shape \(3, 2, 3\)"),
]


@pytest.mark.ops(*catalog.CONV_OPS, impls=("raw-emu", "numba-sim", "raw", "numba"))
@pytest.mark.parametrize("call, message", GEOMETRY_ERRORS,
                         ids=["channels", "stride", "padding", "dilation", "output", "input_ndim", "gy", "w_ndim"])
def test_launchers_share_the_geometry_check(impl, call, message):
    x, w = impl.put(numpy.zeros((1, 2, 5, 5))), impl.put(numpy.zeros((3, 2, 3, 3)))
    gy = impl.put(numpy.zeros((1, 3, 3, 3)))
    with pytest.raises(OpError, match=message):
        call(impl, x, w, gy)


def test_the_function_uses_the_same_check():
    x, w = numpy.zeros((1, 2, 5, 5)), numpy.zeros((3, 1, 3, 3))
    with pytest.raises(OpError, match=r"^conv2d: weight \(3, 1, 3, 3\) expects 1 input channels, got input"):
        conv_impl.check_conv2d_inputs(x, w, None, (1, 1), (0, 0), (1, 1))
    g = conv_impl.check_conv2d_geometry("op", (2, 3, 7, 6), (5, 3, 3, 3), 2, (1, 0), 1)
    assert (g.n, g.c_in, g.h, g.w, g.c_out, g.kh, g.kw, g.out_h, g.out_w) == (2, 3, 7, 6, 5, 3, 3, 4, 2)
    assert (g.stride, g.padding, g.dilation) == ((2, 2), (1, 0), (1, 1))
