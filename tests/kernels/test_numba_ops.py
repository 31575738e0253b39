"""The numba launchers' contract that holds without a GPU: signatures, availability, errors."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

from gpunet.backend import gpu_status
from gpunet.cuda import dispatch, numba_ops


@pytest.mark.parametrize("name", dispatch.HOT_OPS)
def test_launcher_has_the_reference_signature(name: str) -> None:
    reference = dispatch._reference(name)
    assert inspect.signature(numba_ops.OPS[name]) == inspect.signature(reference)


def test_ops_cover_exactly_the_hot_ops() -> None:
    assert set(numba_ops.OPS) == set(dispatch.HOT_OPS)


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
    code = ("import os, sys, gpunet, gpunet.cuda.dispatch, gpunet.cuda.numba_ops; "
            "assert 'numba.cuda' not in sys.modules, 'numba.cuda imported'; "
            "assert 'NUMBA_ENABLE_CUDASIM' not in os.environ")
    env = {"PATH": "", "GPUNET_QUIET": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
