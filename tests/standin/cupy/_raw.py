"""``cupy.RawModule`` / ``cupy.RawKernel`` of the stand-in: CUDA C run on the g++ grid emulator.

The source text given to ``RawModule(code=...)`` is compiled by ``tests/kernels/emulator/grid.py``
(g++ with ``cuda_shim.h``; cached by content hash), and a launch runs every block of the grid
over the NumPy memory behind the device arrays, with shared memory poisoned before every block
(and the blocks in a shuffled order under ``GPUNET_EMU_SHUFFLE=<seed>``). Launch limits are
checked like the driver does (threads per block, block and grid dimensions); arguments must be
device arrays (C-contiguous, as a kernel indexes them flat) or NumPy scalars; arrays allocated by
``cupy.empty`` have NaN guard zones that are checked after each launch. Each launch counts as one
device op.
"""

from __future__ import annotations

import ctypes
import re
import sys
from pathlib import Path
from typing import Any

import numpy as _np

from cupy._standin import check_guard, ndarray, not_implemented, record

_EMULATOR = Path(__file__).resolve().parents[2] / "kernels"
_libs: dict[str, Any] = {}


def _grid_module() -> Any:
    if str(_EMULATOR) not in sys.path:
        sys.path.insert(0, str(_EMULATOR))
    from emulator import grid

    return grid


def _library(code: str) -> tuple[Any, tuple[str, ...]]:
    """The emulator library for ``code`` and its kernel names (built once per process, cached on
    disk by grid.build). gpunet's own sources are recognised by content (their kernel names come
    from macros); other code must name its kernels ``<base>_f32``/``<base>_f64``."""
    if code not in _libs:
        grid = _grid_module()
        from gpunet.cuda.raw_runtime import KERNELS, SUFFIX
        from gpunet.cuda.sources import read_kernel

        known = [name for name in KERNELS if read_kernel(name) == code]
        if known:
            names = tuple(f"{b}_{s}" for b in KERNELS[known[0]] for s in SUFFIX.values())
            _libs[code] = grid.build({known[0]: code}), names
        else:
            names = _kernel_names(code)
            bases = sorted({n.rsplit("_", 1)[0] for n in names if n.endswith(("_f32", "_f64"))})
            if not bases or len(bases) * 2 != len(names):
                raise not_implemented("cupy.RawModule for kernels not named <base>_f32/<base>_f64")
            _libs[code] = grid.build({"standin.cu": code}, kernels=tuple(bases)), names
    return _libs[code]


def _kernel_names(code: str) -> tuple[str, ...]:
    return tuple(re.findall(r"__global__\s+(?:__launch_bounds__\([^)]*\)\s+)?void\s+(\w+)\s*\(", code))


_LIMITS = {"block": (1024, 1024, 64), "grid": (2**31 - 1, 65535, 65535), "threads": 1024}


def _dims(value: Any, what: str) -> tuple[int, int, int]:
    dims = (int(value),) if isinstance(value, (int, _np.integer)) else tuple(int(v) for v in value)
    if not 1 <= len(dims) <= 3 or min(dims) < 1:
        raise ValueError(f"{what} must be 1 to 3 positive ints, got {value!r}")
    return (*dims, *(1,) * (3 - len(dims)))  # type: ignore[return-value]


class Function:
    """A kernel of a :class:`RawModule`: ``kernel(grid, block, args, shared_mem=0, stream=None)``."""

    def __init__(self, code: str, name: str) -> None:
        self._lib, names = _library(code)
        if name not in names:
            raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: named symbol not found: {name!r}")
        self.code, self.name = code, name

    def __call__(self, grid: Any, block: Any, args: tuple, *, shared_mem: int = 0, stream: Any = None,
                 enable_cooperative_groups: bool = False) -> None:
        g, b = _dims(grid, "grid"), _dims(block, "block")
        if (any(v > lim for v, lim in zip(b, _LIMITS["block"])) or b[0] * b[1] * b[2] > _LIMITS["threads"]
                or any(v > lim for v, lim in zip(g, _LIMITS["grid"]))):
            raise RuntimeError(f"CUDA_ERROR_INVALID_VALUE: {self.name}: launch grid {g} block {b} "
                               f"exceeds the device limits")
        if shared_mem:
            raise not_implemented("dynamic shared memory in the emulator (shared_mem > 0)")
        holders: list[Any] = []
        arrays: list[ndarray] = []
        for i, arg in enumerate(args):
            if type(arg) is ndarray:
                if not arg._a.flags.c_contiguous:
                    raise ValueError(f"{self.name}: argument {i} is a non-contiguous device array; a "
                                     f"kernel would read it as if it were contiguous")
                holders.append(ctypes.c_void_p(arg._a.ctypes.data))
                arrays.append(arg)
            elif isinstance(arg, _np.ndarray):
                raise TypeError(f"{self.name}: argument {i} is a numpy.ndarray (host memory); "
                                f"kernels take cupy.ndarray")
            elif isinstance(arg, _np.int32):
                holders.append(ctypes.c_int(int(arg)))
            elif isinstance(arg, _np.float32):
                holders.append(ctypes.c_float(float(arg)))
            elif isinstance(arg, _np.float64):
                holders.append(ctypes.c_double(float(arg)))
            else:
                raise TypeError(f"{self.name}: unsupported kernel argument {i} of type {type(arg)} "
                                f"(pass NumPy scalars: numpy.int32, numpy.float32, ...)")
        argv = (ctypes.c_void_p * len(holders))(
            *(ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in holders))
        record("op", f"RawKernel {self.name}")
        rc = self._lib.emu_launch(self.name.encode(), *g, *b, argv, 0, _grid_module().shuffle_seed())
        if rc == 1:
            raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: {self.name} is not in the emulator library")
        if rc == 2:
            raise AssertionError(f"{self.name}: threads of a block met different __syncthreads")
        for arr in arrays:
            check_guard(arr, self.name)


class RawModule:
    """``cupy.RawModule(code=..., options=...)`` compiled for the CPU grid emulator."""

    def __init__(self, code: str | None = None, *, path: str | None = None, options: tuple = (),
                 backend: str = "nvrtc", translate_cucomplex: bool = False, enable_cooperative_groups: bool = False,
                 name_expressions: Any = None, jitify: bool = False) -> None:
        if code is None:
            if path is None:
                raise TypeError("RawModule: give code= or path=")
            code = Path(path).read_text(encoding="utf-8")
        if name_expressions or jitify:
            raise not_implemented("cupy.RawModule(name_expressions=/jitify=)")
        self.code, self.options, self.backend = code, tuple(options), backend

    def get_function(self, name: str) -> Function:
        return Function(self.code, name)


class RawKernel(Function):
    """``cupy.RawKernel(code, name, options=...)``."""

    def __init__(self, code: str, name: str, options: tuple = (), backend: str = "nvrtc",
                 translate_cucomplex: bool = False, enable_cooperative_groups: bool = False,
                 jitify: bool = False) -> None:
        super().__init__(code, name)
        self.options = tuple(options)


RawModule.__module__ = RawKernel.__module__ = "cupy"
