"""The NumPy fast conv2d (gpunet.ops.conv2d_cpu) split into many bands of output rows equals the
reference: bands of one row, and bands that do not divide the output height."""

from __future__ import annotations

import numpy
import pytest

from gpunet.ops import conv2d as ref
from gpunet.ops import conv2d_cpu as fast

GEOMETRIES = [((1, 1), (0, 0), (1, 1)), ((2, 1), (1, 2), (1, 1)), ((1, 2), (2, 1), (2, 1))]


@pytest.mark.parametrize("chunk_bytes", [1, 3 * 5 * 9 * 3 * 4 * 2])
@pytest.mark.parametrize(("stride", "padding", "dilation"), GEOMETRIES)
def test_banded_equals_reference(monkeypatch, chunk_bytes, stride, padding, dilation):
    monkeypatch.setattr(fast, "CHUNK_BYTES", chunk_bytes)
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((3, 3, 11, 10))
    w = rng.standard_normal((4, 3, 3, 3))
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
