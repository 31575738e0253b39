"""Where the raw CUDA kernels run: the :class:`Runtime` protocol and its CuPy implementation.

``gpunet.cuda.raw_ops`` computes launch configurations and validates arguments independently of
the runtime; the CPU grid emulator in ``tests/kernels/emulator`` is the other implementation.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy

Array = Any
Grid = tuple[int, int, int]

#: Kernel base names per source file; each exists as ``<name>_f32`` and ``<name>_f64``.
KERNELS: dict[str, tuple[str, ...]] = {
    "conv2d.cu": ("conv2d_fwd", "conv2d_bwd_input", "conv2d_bwd_weight", "conv2d_split_sum"),
    "rnn_cells.cu": ("rnn_fwd", "rnn_bwd", "lstm_fwd", "lstm_bwd", "gru_fwd", "gru_bwd",
                     "rnn_seq_fwd", "lstm_seq_fwd", "gru_seq_fwd"),
    "pool.cu": ("max_pool_fwd", "max_pool_bwd", "avg_pool_fwd", "avg_pool_bwd"),
    "fused.cu": ("sgd_step", "relu_fwd", "relu_bwd", "xent_fwd", "xent_reduce", "xent_bwd"),
}
SUFFIX = {numpy.dtype(numpy.float32): "f32", numpy.dtype(numpy.float64): "f64"}
COMPILE_OPTIONS = ("--std=c++17",)


class Runtime(Protocol):
    """Where kernels run: CuPy on a GPU, or the CPU grid emulator in the tests."""

    xp: Any
    array_type: type

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Array: ...

    def launch(self, source: str, kernel: str, grid: Grid, block: Grid, args: tuple) -> None: ...


class CupyRuntime:
    """Compiles each source once (lazily, on first launch) with ``cupy.RawModule``."""

    def __init__(self) -> None:
        import cupy

        self.xp = cupy
        self.array_type = cupy.ndarray
        self._modules: dict[str, Any] = {}
        self._functions: dict[str, Any] = {}

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return self.xp.empty(shape, dtype=dtype)

    def _function(self, source: str, kernel: str) -> Any:
        if kernel not in self._functions:
            if source not in self._modules:
                from gpunet.cuda.sources import read_kernel

                self._modules[source] = self.xp.RawModule(code=read_kernel(source),
                                                          options=COMPILE_OPTIONS)
            self._functions[kernel] = self._modules[source].get_function(kernel)
        return self._functions[kernel]

    def launch(self, source: str, kernel: str, grid: Grid, block: Grid, args: tuple) -> None:
        self._function(source, kernel)(grid, block, args)
