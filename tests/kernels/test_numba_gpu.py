"""numba.cuda launchers on a real GPU, on CuPy arrays: availability, the registry, streams, errors.

Deselected on the CPU with ``-m "not gpu"``; on a GPU machine these run unconditionally. The
comparisons of every numba hot op with the reference run in tests/ops (the ``numba``
implementation of the ``impl`` fixture, on the shared case tables, large cases included).
"""

from __future__ import annotations

import pytest

from gpunet import config
from gpunet.cuda import numba_ops
from gpunet.ops import catalog, registry
from gpunet.ops import conv2d as conv_impl

pytestmark = [pytest.mark.gpu, pytest.mark.standin]  # standin: also run by tests/test_on_standin.py

@pytest.fixture(scope="module")
def cp():
    import cupy

    return cupy


def test_available_lists_every_hot_op() -> None:
    assert numba_ops.unavailable_reason() is None
    assert set(numba_ops.available()) == set(catalog.HOT_OPS + catalog.POOL_OPS)


def test_registry_picks_numba_when_asked() -> None:
    with config.set_kernels("numba"):
        for name in catalog.HOT_OPS:
            assert registry.lookup(name, "cupy") is numba_ops.OPS[name]


def test_runs_on_cupys_current_stream(cp) -> None:
    x = cp.random.standard_normal((2, 3, 9, 9)).astype(cp.float32)
    w = cp.random.standard_normal((4, 3, 3, 3)).astype(cp.float32)
    with cp.cuda.Stream(non_blocking=True):
        y = numba_ops.conv2d_forward(x, w, (1, 1), (1, 1), (1, 1))
        y_ref = conv_impl.conv2d_forward(x, w, (1, 1), (1, 1), (1, 1))
        assert float(cp.abs(y - y_ref).max()) < 1e-4


def test_validation_errors(cp) -> None:
    x = cp.zeros((1, 2, 5, 5), cp.float32)
    w = cp.zeros((3, 2, 3, 3), cp.float32)
    with pytest.raises(TypeError, match="'w' is float64 but the other inputs are float32"):
        numba_ops.conv2d_forward(x, w.astype(cp.float64), (1, 1), (0, 0), (1, 1))
    with pytest.raises(TypeError, match="float32 or float64, got float16"):
        numba_ops.conv2d_forward(x.astype(cp.float16), w, (1, 1), (0, 0), (1, 1))
    strided = x[:, :, :, ::2]  # copied, as raw does (was refused)
    assert float(cp.abs(numba_ops.conv2d_forward(strided, w, (1, 1), (1, 1), (1, 1))
                        - conv_impl.conv2d_forward(strided, w, (1, 1), (1, 1), (1, 1))).max()) < 1e-5
    with pytest.raises(ValueError, match="expects 4 input channels"):
        numba_ops.conv2d_forward(x, cp.zeros((3, 4, 3, 3), cp.float32), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match=r"expected 'gy' of shape"):
        numba_ops.conv2d_backward_input(cp.zeros((1, 3, 2, 2), cp.float32), w, x.shape, (1, 1),
                                        (0, 0), (1, 1))
    h = cp.zeros((4, 6), cp.float32)
    with pytest.raises(ValueError, match=r"'mask' has shape \(3,\), expected \(4,\)"):
        numba_ops.rnn_step_forward(h, h, cp.zeros(6, cp.float32), h, cp.ones(3, cp.float32))
    with pytest.raises(ValueError, match="nonlinearity"):
        numba_ops.rnn_step_backward(h, h, cp.ones(4, cp.float32), "sigmoid")
