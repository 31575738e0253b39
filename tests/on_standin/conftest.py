"""Tests that run gpunet's CuPy path on the strict CuPy stand-in (``tests/standin``).

Collected only when ``GPUNET_STANDIN=1``: ``tests/test_on_standin.py`` runs this folder in a pytest
subprocess with ``tests/standin`` first on ``PYTHONPATH`` (so ``import cupy`` is the stand-in)
and ``NUMBA_ENABLE_CUDASIM=1`` (numba kernels on the simulator). In the normal test process the
stand-in never loads, so the other tests keep seeing the real CuPy without a GPU.

numba on the stand-in: the simulator has no ``cuda.as_cuda_array``; the adapter below gives it one
that hands the kernels a ``FakeCUDAArray`` over the stand-in array's NumPy memory (shared, so the
kernels write the device array in place), and lets ``gpunet.cuda.numba_ops.unavailable_reason``
accept the simulator. Each simulated kernel launch counts as a device op.
"""

from __future__ import annotations

import os
import sys

import pytest

ACTIVE = os.environ.get("GPUNET_STANDIN") == "1"

if not ACTIVE:
    collect_ignore_glob = ["*"]
else:
    import cupy

    if not getattr(cupy, "_is_standin", False):
        raise RuntimeError(f"GPUNET_STANDIN=1 but 'import cupy' gave {cupy.__file__}; put tests/standin "
                           f"first on PYTHONPATH (tests/test_on_standin.py does)")


def _numba_adapter() -> None:
    """Let gpunet's numba launchers run unchanged on numba's CUDA simulator over stand-in arrays."""
    from numba import cuda

    if not cuda.config.ENABLE_CUDASIM:
        return
    from cupy._standin import ndarray, record
    from numba.cuda.simulator import kernel as sim_kernel
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    from gpunet.cuda import numba_ops

    def as_cuda_array(obj, sync=True):
        if type(obj) is not ndarray:
            raise TypeError(f"as_cuda_array (simulator adapter): expected a cupy.ndarray, got {type(obj)}")
        return FakeCUDAArray(obj._a)

    cuda.as_cuda_array = as_cuda_array
    numba_ops.unavailable_reason = lambda: None
    call = sim_kernel.FakeCUDAKernel.__call__

    def counted(self, *args):
        if not (self._device or sim_kernel._kernel_context):
            record("op", f"numba kernel {self.fn.__name__}")
        return call(self, *args)

    sim_kernel.FakeCUDAKernel.__call__ = counted


if ACTIVE:
    _numba_adapter()


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Kernel choices are cached per settings; start each test from clean probes."""
    from gpunet.ops import registry

    registry.clear_probes()
    yield
    registry.clear_probes()


def standin_counts():
    return sys.modules["cupy"]._standin
