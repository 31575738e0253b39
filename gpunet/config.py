"""Which implementation runs the hot GPU ops (a view of :mod:`gpunet.settings`).

``kernels``: ``"auto"`` (raw CUDA C when it compiles here, else numba, else cupy), ``"raw"``
(CuPy RawModule over ``kernels/*.cu``), ``"numba"`` (numba.cuda kernels) or ``"cupy"`` (plain
CuPy array code: im2col + GEMM, elementwise; the GPU reference). Only consulted on the CuPy
backend; see :mod:`gpunet.ops.registry` for the rule.
"""

from __future__ import annotations

from gpunet import settings
from gpunet.settings import KERNEL_CHOICES

__all__ = ["KERNEL_CHOICES", "kernels", "set_kernels"]


class _KernelScope:
    def __init__(self, previous: settings.Settings) -> None:
        self._previous = previous

    def __enter__(self) -> str:
        return settings.current().kernels

    def __exit__(self, *exc: object) -> None:
        settings.restore(self._previous)


def set_kernels(name: str) -> _KernelScope:
    """Choose the GPU kernel implementation (innermost settings scope), or scoped with ``with``."""
    if name not in KERNEL_CHOICES:
        raise ValueError(f"gpunet.config.set_kernels: expected one of {KERNEL_CHOICES}, got {name!r}")
    return _KernelScope(settings.replace(kernels=name))


def kernels() -> str:
    """The configured kernel implementation name."""
    return settings.current().kernels
