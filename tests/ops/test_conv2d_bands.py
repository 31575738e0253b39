"""The NumPy fast conv2d (gpunet.ops.conv2d_cpu) with the batch cut in chunks that the threads
claim equals the reference: one sample, fewer samples than threads, and chunks that do not
divide the batch."""

from __future__ import annotations

import numba
import numpy
import pytest

import gpunet
from gpunet.ops import conv2d as ref
from gpunet.ops import conv2d_cpu as fast

GEOMETRIES = [((1, 1), (0, 0), (1, 1)), ((1, 1), (2, 1), (1, 1)), ((2, 1), (1, 2), (1, 1)), ((1, 2), (2, 1), (2, 1))]


@pytest.mark.parametrize(("batch", "threads"), [(1, 2), (2, 2), (3, 2), (3, 1)])
@pytest.mark.parametrize(("stride", "padding", "dilation"), GEOMETRIES)
def test_split_equals_reference(monkeypatch, batch, threads, stride, padding, dilation):
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    monkeypatch.setattr(fast, "SPLIT_MIN", 0)
    x_shape, w_shape = (batch, 3, 11, 10), (4, 3, 3, 3)
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(4)
    y = ref.conv2d_forward(x, w, stride, padding, dilation)
    gy = rng.standard_normal(y.shape)
    tol = {"rtol": 1e-12, "atol": 1e-12}
    want_gx = ref.conv2d_backward_input(gy, w, x.shape, stride, padding, dilation)
    want_gw = ref.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation)
    with gpunet.using(threads=threads):
        assert fast._Geometry(x_shape, w_shape, stride, padding, dilation).parts == min(batch, threads)
        numpy.testing.assert_allclose(fast.conv2d_forward(x, w, stride, padding, dilation), y, **tol)
        numpy.testing.assert_allclose(fast.conv2d_backward_input(gy, w, x.shape, stride, padding, dilation),
                                      want_gx, **tol)
        numpy.testing.assert_allclose(fast.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation),
                                      want_gw, **tol)
        out, state = fast.COMPILED.forward(x, w, b, stride, padding, dilation, True, True)
        gx, gw, gb = fast.COMPILED.backward(gy, state, (True, True, True))
    numpy.testing.assert_allclose(out, y + b[:, None, None], **tol)
    numpy.testing.assert_allclose(gx, want_gx, **tol)
    numpy.testing.assert_allclose(gw, want_gw, **tol)
    numpy.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3)), **tol)


def test_a_forward_at_two_threads_and_its_backward_at_one_agree(monkeypatch):
    """The thread setting may change between a forward and its backward (the parts follow it)."""
    monkeypatch.setattr(fast, "SPLIT_MIN", 0)
    rng = numpy.random.default_rng(1)
    x, w = rng.standard_normal((4, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    gy = rng.standard_normal((4, 3, 4, 4))
    with gpunet.using(threads=min(2, numba.config.NUMBA_NUM_THREADS)):
        _, state = fast.COMPILED.forward(x, w, None, (1, 1), (0, 0), (1, 1), True, True)
    with gpunet.using(threads=1):
        gx, gw, gb = fast.COMPILED.backward(gy, state, (True, True, False))
    numpy.testing.assert_allclose(gx, ref.conv2d_backward_input(gy, w, x.shape, (1, 1), (0, 0), (1, 1)), rtol=1e-12)
    numpy.testing.assert_allclose(gw, ref.conv2d_backward_weight(x, gy, w.shape, (1, 1), (0, 0), (1, 1)), rtol=1e-12)
    assert gb is None


def test_float16_goes_to_the_reference_and_integers_are_refused_in_one_line():
    rng = numpy.random.default_rng(2)
    x, w = rng.standard_normal((2, 1, 5, 5)).astype("float16"), rng.standard_normal((2, 1, 3, 3)).astype("float16")
    one, zero = (1, 1), (0, 0)
    y = fast.conv2d_forward(x, w, one, zero, one)
    assert y.dtype == numpy.float16
    numpy.testing.assert_array_equal(y, ref.conv2d_forward(x, w, one, zero, one))
    out, state = fast.COMPILED.forward(x, w, None, one, zero, one, True, True)
    gx, gw, _ = fast.COMPILED.backward(numpy.ones_like(y), state, (True, True, False))
    numpy.testing.assert_array_equal(gw, ref.conv2d_backward_weight(x, numpy.ones_like(y), w.shape, one, zero, one))
    with pytest.raises(TypeError, match=r"conv2d \(numpy-fast\): expected floating-point arrays, got int64"):
        fast.conv2d_forward(numpy.ones((1, 1, 3, 3), dtype=numpy.int64), numpy.ones((1, 1, 2, 2), dtype=numpy.int64),
                            (1, 1), (0, 0), (1, 1))
