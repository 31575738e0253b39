"""Python side of the hand-written GPU kernels: CuPy RawModule launchers over ``kernels/*.cu``
(:mod:`raw_ops`) and numba.cuda kernels (:mod:`numba_ops`). They register in
:mod:`gpunet.ops.catalog`; nothing in the op layer imports them.

This face also answers PyTorch's two questions, :func:`is_available` and :func:`device_count`,
from the cached probe :func:`gpunet.backend.gpu_status`; importing it loads no launcher."""

from __future__ import annotations

from gpunet import backend


def is_available() -> bool:
    """Whether the CuPy backend can run: CuPy imports and a CUDA device is visible."""
    return backend.gpu_status()[0]


def device_count() -> int:
    """The number of visible CUDA devices (0 when the CuPy backend cannot run)."""
    if not backend.gpu_status()[0]:
        return 0
    import cupy

    return int(cupy.cuda.runtime.getDeviceCount())
