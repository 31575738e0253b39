"""The NumPy fast conv2d (gpunet.ops.conv2d_cpu) split into chunks of samples equals the
reference: chunks of one sample, and chunks that do not divide the batch."""

from __future__ import annotations

import numpy
import pytest

from gpunet.ops import conv2d as ref
from gpunet.ops import conv2d_cpu as fast

GEOMETRIES = [((1, 1), (0, 0), (1, 1)), ((1, 1), (2, 1), (1, 1)), ((2, 1), (1, 2), (1, 1)), ((1, 2), (2, 1), (2, 1))]


@pytest.mark.parametrize("samples", [1, 2])
@pytest.mark.parametrize(("stride", "padding", "dilation"), GEOMETRIES)
def test_chunked_equals_reference(monkeypatch, samples, stride, padding, dilation):
    x_shape, w_shape = (3, 3, 11, 10), (4, 3, 3, 3)
    g = fast._Geometry(x_shape, w_shape, stride, padding, dilation)
    monkeypatch.setattr(fast, "CHUNK_BYTES", samples * g.k * g.pixels * 8)  # float64 columns
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    y = ref.conv2d_forward(x, w, stride, padding, dilation)
    gy = rng.standard_normal(y.shape)
    tol = {"rtol": 1e-12, "atol": 1e-12}
    numpy.testing.assert_allclose(fast.conv2d_forward(x, w, stride, padding, dilation), y, **tol)
    numpy.testing.assert_allclose(fast.conv2d_backward_input(gy, w, x.shape, stride, padding, dilation),
                                  ref.conv2d_backward_input(gy, w, x.shape, stride, padding, dilation), **tol)
    numpy.testing.assert_allclose(fast.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation),
                                  ref.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation), **tol)
    out, state = fast.COMPILED.forward(x, w, None, stride, padding, dilation, True, True)
    gx, gw, _ = fast.COMPILED.backward(gy, state, (True, True, False))
    numpy.testing.assert_allclose(out, y, **tol)
    numpy.testing.assert_allclose(gx, ref.conv2d_backward_input(gy, w, x.shape, stride, padding, dilation), **tol)
