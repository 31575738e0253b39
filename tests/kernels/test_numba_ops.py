"""The numba launchers' contract that holds without a GPU: signatures, availability, errors."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

from gpunet.backend import gpu_status
from gpunet.cuda import numba_ops
from gpunet.ops import catalog, registry


@pytest.mark.parametrize("name", catalog.HOT_OPS)
def test_launcher_has_the_reference_signature(name: str) -> None:
    reference = registry.get(name, "numpy-ref").load()
    assert inspect.signature(numba_ops.OPS[name]) == inspect.signature(reference)


def test_ops_cover_exactly_the_hot_ops() -> None:
    assert set(numba_ops.OPS) == set(catalog.HOT_OPS + catalog.POOL_OPS)


@pytest.mark.skipif(gpu_status()[0], reason="a GPU is usable here; test_numba_gpu covers it")
def test_available_is_empty_without_a_gpu() -> None:
    assert numba_ops.available() == {}
    assert numba_ops.unavailable_reason()


def test_numpy_arrays_are_refused_with_the_op_name() -> None:
    x = np.zeros((1, 1, 4, 4), np.float32)
    w = np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(TypeError, match=r"numba_ops\.conv2d_forward: 'x' must be a cupy\.ndarray"
                                        r".*got numpy\.ndarray"):
        numba_ops.conv2d_forward(x, w, (1, 1), (0, 0), (1, 1))
    h = np.zeros((2, 3), np.float64)
    with pytest.raises(TypeError, match=r"numba_ops\.gru_step_backward: 'saved'.*numpy\.ndarray"):
        numba_ops.gru_step_backward(np.zeros((2, 12)), h, h, np.ones(2))


def test_importing_gpunet_leaves_numba_cuda_alone() -> None:
    """Importing gpunet (and the launchers) neither imports numba.cuda nor picks the simulator."""
    code = ("import os, sys, gpunet, gpunet.ops.registry, gpunet.cuda.numba_ops; "
            "assert 'numba.cuda' not in sys.modules, 'numba.cuda imported'; "
            "assert 'NUMBA_ENABLE_CUDASIM' not in os.environ")
    env = {"PATH": "", "GPUNET_QUIET": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture
def numpy_passes_as_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let NumPy arrays through the kind check so the remaining validation can be reached."""
    monkeypatch.setattr(numba_ops, "is_cupy_array", lambda a: isinstance(a, np.ndarray))
    monkeypatch.setattr(numba_ops, "_cupy", lambda: np)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda x, w, h, m: numba_ops.conv2d_forward(x, w.astype(np.float64), (1, 1), (0, 0), (1, 1)),
     TypeError, "'w' is float64 but the other inputs are float32"),
    (lambda x, w, h, m: numba_ops.conv2d_forward(x.astype(np.float16), w, (1, 1), (0, 0), (1, 1)),
     TypeError, "float32 or float64, got float16"),
    # a non-contiguous input is copied (as raw does), so it reaches the shared geometry check
    (lambda x, w, h, m: numba_ops.conv2d_forward(x[..., ::2], w, (1, 1), (0, 0), (1, 2)),
     ValueError, r"numba_ops\.conv2d_forward: output size must be positive, got \(3, -1\)"),
    (lambda x, w, h, m: numba_ops.conv2d_forward(x, w[:, :1].copy(), (1, 1), (0, 0), (1, 1)),
     ValueError, r"numba_ops\.conv2d_forward: weight \(3, 1, 3, 3\) expects 1 input channels, got input "
                 r"\(1, 2, 5, 5\) with 2"),
    (lambda x, w, h, m: numba_ops.conv2d_forward(x, w, (0, 1), (0, 0), (1, 1)),
     ValueError, "stride >= 1"),
    (lambda x, w, h, m: numba_ops.conv2d_forward(x, w, (1, 1), (0, 0), (3, 3)),
     ValueError, r"numba_ops\.conv2d_forward: output size must be positive, got \(-1, -1\)"),
    (lambda x, w, h, m: numba_ops.conv2d_forward(x, w, (1,), (0, 0), (1, 1)),
     ValueError, r"numba_ops\.conv2d_forward: expected stride as an int or a pair of ints, got \(1,\)"),
    (lambda x, w, h, m: numba_ops.conv2d_backward_input(h, w, x.shape, (1, 1), (0, 0), (1, 1)),
     ValueError, r"expected 'gy' of shape \(1, 3, 3, 3\) \(the output's\), got \(4, 6\)"),
    (lambda x, w, h, m: numba_ops.rnn_step_forward(h, h, h[0], h, m[:3]),
     ValueError, r"'mask' has shape \(3,\), expected \(4,\)"),
    (lambda x, w, h, m: numba_ops.lstm_step_forward(h, h, h[0], h, h, m),
     ValueError, r"'xg' has shape \(4, 6\), expected \(4, 24\)"),
    (lambda x, w, h, m: numba_ops.rnn_step_backward(h, h, m, "sigmoid"),
     ValueError, "nonlinearity must be 'tanh' or 'relu'"),
    (lambda x, w, h, m: numba_ops.gru_step_backward(h, h[0], h, m),
     ValueError, "'h_prev' must be 2-D"),
])
def test_validation_before_launch(numpy_passes_as_cupy: None, call, error: type,
                                  message: str) -> None:
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    h = np.zeros((4, 6), np.float32)
    with pytest.raises(error, match=message):
        call(x, w, h, np.ones(4, np.float32))


def test_conv_refuses_sizes_beyond_32_bit_indexing() -> None:
    from gpunet.cuda import numba_conv

    g = numba_conv.geometry((2**16, 1, 2**8, 2**8), (1, 1, 1, 1), (2**8, 2**8), (1, 1), (0, 0),
                            (1, 1), "forward")  # M = 2**32 output pixels
    with pytest.raises(ValueError, match="32-bit index range"):
        numba_conv.launch("forward", None, None, None, g, "float32")
