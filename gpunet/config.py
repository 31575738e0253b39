"""Library-wide settings: which implementation runs the hot GPU ops.

``kernels``: ``"auto"`` (raw CUDA C when CuPy can compile it, else numba, else cupy),
``"raw"`` (CuPy RawModule over ``kernels/*.cu``), ``"numba"`` (numba.cuda kernels) or
``"cupy"`` (plain CuPy array code: im2col + GEMM, elementwise; the GPU reference).
Only consulted on the CuPy backend; the NumPy backend always runs the NumPy path.
"""

from __future__ import annotations

import os

KERNEL_CHOICES = ("auto", "raw", "numba", "cupy")
_settings = {"kernels": os.environ.get("GPUNET_KERNELS", "auto")}


class _KernelScope:
    def __init__(self, previous: str) -> None:
        self._previous = previous

    def __enter__(self) -> str:
        return _settings["kernels"]

    def __exit__(self, *exc: object) -> None:
        _settings["kernels"] = self._previous


def set_kernels(name: str) -> _KernelScope:
    """Choose the GPU kernel implementation globally, or scoped with ``with``."""
    if name not in KERNEL_CHOICES:
        raise ValueError(f"gpunet.config.set_kernels: expected one of {KERNEL_CHOICES}, got {name!r}")
    previous = _settings["kernels"]
    _settings["kernels"] = name
    return _KernelScope(previous)


def kernels() -> str:
    """The configured kernel implementation name."""
    return _settings["kernels"]
