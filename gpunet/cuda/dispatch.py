"""Pick the implementation of a hot op for arrays on the current device.

Hot ops (conv2d forward/backward, recurrent cell steps) call :func:`lookup` with the op name.
NumPy arrays always get the reference implementation. CuPy arrays get the implementation named
by ``gpunet.config.kernels()``: ``raw`` (CUDA C via CuPy RawModule), ``numba`` (numba.cuda) or
``cupy`` (the reference code running on CuPy arrays); ``auto`` prefers raw, then numba, then cupy.
Every implementation has the reference's exact signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpunet import config

HOT_OPS = (
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
    "rnn_step_forward", "rnn_step_backward",
    "lstm_step_forward", "lstm_step_backward",
    "gru_step_forward", "gru_step_backward",
)


def _reference(name: str) -> Callable[..., Any]:
    if name.startswith("conv2d"):
        from gpunet.functional import conv_impl as module
    else:
        from gpunet.functional import cells as module
    return getattr(module, name)


def _kernel_table(impl: str) -> dict[str, Callable[..., Any]]:
    """Kernels of one implementation (empty when it cannot run here)."""
    try:
        if impl == "raw":
            from gpunet.cuda import raw_ops

            return raw_ops.available()
        if impl == "numba":
            from gpunet.cuda import numba_ops

            return numba_ops.available()
    except ImportError:
        return {}
    return {}


def lookup(name: str, on_gpu: bool) -> Callable[..., Any]:
    """The function to run hot op ``name``; ``on_gpu`` says whether the arrays are CuPy's."""
    if name not in HOT_OPS:
        raise KeyError(f"dispatch.lookup: unknown hot op {name!r}; expected one of {HOT_OPS}")
    if not on_gpu:
        return _reference(name)
    choice = config.kernels()
    order = ("raw", "numba") if choice == "auto" else (choice,)
    for impl in order:
        if impl == "cupy":
            break
        table = _kernel_table(impl)
        if name in table:
            return table[name]
        if choice != "auto":
            raise RuntimeError(f"kernels={impl!r}: no usable {impl} implementation of {name} "
                               f"on this machine (see `gpunet info`)")
    return _reference(name)
