"""pytest plugin for runs on the CuPy stand-in (``-p standin_plugin`` with ``tests/standin`` on the path).

numba on the stand-in: the simulator has no ``cuda.as_cuda_array``; :func:`numba_adapter` gives it
one that hands the kernels a ``FakeCUDAArray`` over the stand-in array's NumPy memory (shared, so
the kernels write the device array in place), and lets ``gpunet.cuda.numba_ops.environment_reason``
accept the simulator (the probe still compiles and launches a kernel on it). gpunet's launchers
run unchanged; each simulated launch counts as a device op.
"""

from __future__ import annotations


def numba_adapter() -> None:
    """Let gpunet's numba launchers run unchanged on numba's CUDA simulator over stand-in arrays."""
    from numba import cuda

    if not cuda.config.ENABLE_CUDASIM or getattr(cuda, "_standin_adapted", False):
        return
    cuda._standin_adapted = True
    from cupy._standin import ndarray, record
    from numba.cuda.simulator import kernel as sim_kernel
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    from gpunet.cuda import numba_ops

    def as_cuda_array(obj, sync=True):
        if type(obj) is not ndarray:
            raise TypeError(f"as_cuda_array (simulator adapter): expected a cupy.ndarray, got {type(obj)}")
        return FakeCUDAArray(obj._a)

    cuda.as_cuda_array = as_cuda_array
    numba_ops.environment_reason = lambda: None
    call = sim_kernel.FakeCUDAKernel.__call__

    def counted(self, *args):
        if not (self._device or sim_kernel._kernel_context):
            record("op", f"numba kernel {self.fn.__name__}")
        return call(self, *args)

    sim_kernel.FakeCUDAKernel.__call__ = counted


def pytest_configure(config) -> None:
    import cupy

    if not getattr(cupy, "_is_standin", False):
        raise RuntimeError(f"standin_plugin: 'import cupy' gave {cupy.__file__}, not the stand-in")
    numba_adapter()
