"""max_pool2d / avg_pool2d: forward against nested loops, gradients, ties, errors."""

from __future__ import annotations

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpunet
from gpunet import functional as F
from gpunet.autograd import OpError, Tensor
from gpunet.testing import gradcheck


def pool_reference(x, kernel, stride, padding, kind):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    fill = -numpy.inf if kind == "max" else 0.0
    xp = numpy.full((n, c, h + 2 * ph, w + 2 * pw), fill)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = numpy.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            y[:, :, i, j] = window.max(axis=(2, 3)) if kind == "max" else window.mean(axis=(2, 3))
    return y


POOLS = {"max": F.max_pool2d, "avg": F.avg_pool2d}


@pytest.fixture(params=["compiled", "arrays"])
def max_path(request):
    """Run a test with the numba kernels (numpy-fast) and with the array code CuPy uses (numpy-ref)."""
    with gpunet.using(fast_paths=request.param == "compiled"):
        yield request.param
CASES = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
    ((2, 3, 9, 7), (2, 2), (2, 2), (0, 0)),
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1)),
    ((2, 1, 6, 8), (3, 2), (1, 2), (1, 0)),
    ((1, 2, 5, 5), (5, 5), (1, 1), (2, 2)),
    ((2, 2, 10, 10), (3, 3), (3, 3), (0, 1)),
    ((1, 1, 4, 4), (1, 1), (1, 1), (0, 0)),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES)
def test_forward_matches_reference(kind, shape, kernel, stride, padding, max_path):
    x = numpy.random.default_rng(0).standard_normal(shape)
    y = POOLS[kind](Tensor(x), kernel, stride, padding)
    numpy.testing.assert_allclose(y.data, pool_reference(x, kernel, stride, padding, kind), rtol=1e-12)


@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
       kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       pad=st.tuples(st.integers(0, 2), st.integers(0, 2)), kind=st.sampled_from(["max", "avg"]),
       seed=st.integers(0, 2**16))
@settings(max_examples=80, deadline=None)
def test_forward_property(shape, kernel, stride, pad, kind, seed):
    padding = (min(pad[0], kernel[0] // 2), min(pad[1], kernel[1] // 2))
    x = numpy.random.default_rng(seed).standard_normal(shape)
    if any(shape[2 + i] + 2 * padding[i] < kernel[i] for i in (0, 1)):
        with pytest.raises(OpError, match="output size must be positive"):
            POOLS[kind](Tensor(x), kernel, stride, padding)
        return
    y = POOLS[kind](Tensor(x), kernel, stride, padding)
    numpy.testing.assert_allclose(y.data, pool_reference(x, kernel, stride, padding, kind), rtol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES[:6])
def test_gradcheck(kind, shape, kernel, stride, padding, max_path):
    x = numpy.random.default_rng(1).standard_normal(shape)
    assert gradcheck(lambda t: POOLS[kind](t, kernel, stride, padding), [x])


def test_default_stride_is_the_kernel():
    x = Tensor(numpy.arange(36.0).reshape(1, 1, 6, 6))
    assert F.max_pool2d(x, 3).shape == (1, 1, 2, 2)
    numpy.testing.assert_array_equal(F.max_pool2d(x, 3).data[0, 0], [[14, 17], [32, 35]])
    numpy.testing.assert_array_equal(F.avg_pool2d(x, 3).data[0, 0], [[7, 10], [25, 28]])


def test_max_ties_send_the_gradient_to_the_first_maximum(max_path):
    x = Tensor(numpy.ones((1, 1, 2, 4)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    numpy.testing.assert_array_equal(x.grad[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0]])


def test_overlapping_max_windows_accumulate(max_path):
    x = Tensor(numpy.array([[[[0.0, 0, 0], [0, 5, 0], [0, 0, 0]]]]), requires_grad=True)
    F.max_pool2d(x, 2, stride=1).sum().backward()
    assert x.grad[0, 0, 1, 1] == 4 and x.grad.sum() == 4


def test_avg_counts_zero_padding():
    x = Tensor(numpy.ones((1, 1, 2, 2)), requires_grad=True)
    y = F.avg_pool2d(x, 3, stride=1, padding=1)
    numpy.testing.assert_allclose(y.data[0, 0], numpy.full((2, 2), 4 / 9))
    y.sum().backward()
    numpy.testing.assert_allclose(x.grad, numpy.full((1, 1, 2, 2), 4 / 9))


def test_float32_stays_float32(max_path):
    x = Tensor(numpy.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(numpy.float32), requires_grad=True)
    for pool in POOLS.values():
        x.grad = None
        y = pool(x, 2)
        y.sum().backward()
        assert y.dtype == numpy.float32 and x.grad.dtype == numpy.float32


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x, args, message", [
    (numpy.zeros((2, 8, 8)), (2,), "expected input of 4 dimensions"),
    (numpy.zeros((1, 1, 8, 8), dtype=numpy.int64), (2,), "expected a floating input"),
    (numpy.zeros((1, 1, 8, 8)), (2, 2, 2), "expected padding <= kernel // 2"),
    (numpy.zeros((1, 1, 2, 2)), (3,), "output size must be positive"),
    (numpy.zeros((1, 1, 8, 8)), (0,), "expected kernel_size >= 1"),
    (numpy.zeros((1, 1, 8, 8)), (2, 0), "expected stride >= 1"),
])
def test_errors(kind, x, args, message, max_path):
    with pytest.raises(OpError, match=f"{kind}_pool2d: {message}"):
        POOLS[kind](Tensor(x), *args)


@pytest.mark.parametrize("compiled", [True, False])
def test_property_both_max_paths(compiled):
    with gpunet.using(fast_paths=compiled):
        _property_max_path()


def _property_max_path():
    rng = numpy.random.default_rng(3)
    for _ in range(20):
        k = tuple(rng.integers(1, 4, 2))
        s = tuple(rng.integers(1, 3, 2))
        p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        x = rng.standard_normal((2, 2, int(rng.integers(k[0], 9)), int(rng.integers(k[1], 9))))
        y = F.max_pool2d(Tensor(x), k, s, p)
        numpy.testing.assert_array_equal(y.data, pool_reference(x, k, s, p, "max"))


def test_max_nan_propagates_like_pytorch():
    x = numpy.zeros((1, 1, 2, 2))
    x[0, 0, 1, 0] = numpy.nan
    assert numpy.isnan(F.max_pool2d(Tensor(x), 2).data).all()
