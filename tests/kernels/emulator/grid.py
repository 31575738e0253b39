"""Run ``kernels/*.cu`` unchanged on the CPU: g++ + ``cuda_shim.h`` + ``launch.h``, via ctypes.

``build({"conv2d.cu": text, ...})`` compiles the given sources (real or mutated) into a shared
library, cached by content hash, and returns it; :class:`EmulatorRuntime` plugs that library
into ``gpunet.cuda.raw_ops.RawOps`` in place of CuPy. Arrays it allocates sit between NaN guard
zones that are checked after every launch, so out-of-bounds stores fail loudly and
out-of-bounds reads of guarded inputs (see :meth:`EmulatorRuntime.guarded`) poison results.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy

from gpunet.cuda.raw_ops import KERNELS, SUFFIX

HERE = Path(__file__).resolve().parent
CXX = os.environ.get("CXX", "g++")
FLAGS = ("-std=c++20", "-pthread", "-O1", "-fPIC", "-shared", "-Wall", "-Wno-unknown-pragmas",
         "-Werror")
MIN_GUARD = 64  # NaN elements on each side of an emulator array: max(MIN_GUARD, its size)


class GuardError(AssertionError):
    """A kernel wrote outside the array it was given."""


class BarrierDivergence(AssertionError):
    """Threads of one block disagreed on a barrier (undefined behaviour in CUDA)."""


def have_compiler() -> bool:
    """Whether the C++ compiler used by the emulator is on PATH."""
    return shutil.which(CXX) is not None


def cache_dir() -> Path:
    """Build cache (``GPUNET_EMU_CACHE`` or a per-user temp folder)."""
    default = Path(tempfile.gettempdir()) / f"gpunet-emu-{os.getuid()}"
    path = Path(os.environ.get("GPUNET_EMU_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _registry(sources: dict[str, str], folder: Path, kernels: tuple[str, ...] | None) -> str:
    lines = ['#include "cuda_shim.h"']
    names = []
    for file_name, text in sources.items():
        path = folder / file_name
        path.write_text(text, encoding="utf-8")
        lines.append(f'#include "{path}"')
        bases = KERNELS[file_name] if kernels is None else kernels
        names += [f"{base}_{suffix}" for base in bases for suffix in SUFFIX.values()]
    lines.append('#include "launch.h"')
    lines.append("EMU_REGISTRY(" + ", ".join(f"EMU_KERNEL({n})" for n in names) + ")")
    return "\n".join(lines) + "\n"


def build(sources: dict[str, str], kernels: tuple[str, ...] | None = None) -> ctypes.CDLL:
    """Compile ``{file name: CUDA C text}`` and load it. The kernels registered are those of
    ``raw_ops.KERNELS`` for each file name, or the base names ``kernels`` (``_f32``/``_f64``)."""
    shim = "".join((HERE / f).read_text() for f in ("cuda_shim.h", "launch.h"))
    key = (sorted(sources.items()), kernels, shim, FLAGS, CXX)
    digest = hashlib.sha256(repr(key).encode()).hexdigest()
    folder = cache_dir() / digest[:20]
    lib_path = folder / "kernels.so"
    if not lib_path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        main = folder / "registry.cpp"
        main.write_text(_registry(sources, folder, kernels), encoding="utf-8")
        tmp = folder / f"kernels.{os.getpid()}.so"
        cmd = [CXX, *FLAGS, f"-I{HERE}", str(main), "-o", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"emulator build failed: {' '.join(cmd)}\n{proc.stderr}")
        os.replace(tmp, lib_path)
    lib = ctypes.CDLL(str(lib_path))
    lib.emu_launch.argtypes = [ctypes.c_char_p] + [ctypes.c_uint] * 6 + [ctypes.c_void_p,
                                                                          ctypes.c_int]
    lib.emu_launch.restype = ctypes.c_int
    return lib


class EmulatorRuntime:
    """A ``raw_ops.Runtime`` over NumPy arrays and an emulator library from :func:`build`.

    ``serial=True`` runs the threads of a block one at a time between barriers, in an order that
    alternates each phase (deterministic; exposes missing ``__syncthreads``); the default runs
    them freely in parallel between barriers.
    """

    xp = numpy
    array_type = numpy.ndarray

    def __init__(self, lib: ctypes.CDLL, serial: bool = False) -> None:
        self._lib = lib
        self.serial = serial
        self._guarded: list[tuple[numpy.ndarray, int]] = []
        self.launches: list[tuple[str, tuple, tuple]] = []

    def empty(self, shape: tuple[int, ...], dtype: Any) -> numpy.ndarray:
        """Uninitialised (NaN-filled) array between NaN guard zones as large as itself, so a
        stray store a whole row or tile past either end still lands in a guard."""
        size = int(numpy.prod(shape, dtype=numpy.int64))
        guard = max(MIN_GUARD, size)
        buf = numpy.full(size + 2 * guard, numpy.nan, dtype=dtype)
        self._guarded.append((buf, guard))
        return buf[guard: guard + size].reshape(shape)

    def guarded(self, arr: numpy.ndarray) -> numpy.ndarray:
        """A guarded C-contiguous copy of ``arr`` (use for kernel inputs)."""
        out = self.empty(arr.shape, arr.dtype)
        out[...] = arr
        return out

    def check_guards(self) -> None:
        for buf, guard in self._guarded:
            if not (numpy.isnan(buf[:guard]).all() and numpy.isnan(buf[-guard:]).all()):
                raise GuardError("a kernel wrote outside its array")

    def launch(self, source: str, kernel: str, grid: tuple, block: tuple, args: tuple) -> None:
        holders: list[Any] = []
        for arg in args:
            if isinstance(arg, numpy.ndarray):
                if not arg.flags.c_contiguous:
                    raise AssertionError(f"{kernel}: non-contiguous array reached the kernel")
                holders.append(ctypes.c_void_p(arg.ctypes.data))
            elif isinstance(arg, numpy.int32):
                holders.append(ctypes.c_int(int(arg)))
            elif isinstance(arg, numpy.float32):
                holders.append(ctypes.c_float(float(arg)))
            elif isinstance(arg, numpy.float64):
                holders.append(ctypes.c_double(float(arg)))
            else:
                raise AssertionError(f"{kernel}: unexpected kernel argument {type(arg)}")
        argv = (ctypes.c_void_p * len(holders))(
            *(ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in holders))
        rc = self._lib.emu_launch(kernel.encode(), *grid, *block, argv, int(self.serial))
        if rc == 1:
            raise KeyError(f"kernel {kernel!r} is not in the emulator library")
        if rc == 2:
            raise BarrierDivergence(f"{kernel}: threads of a block diverged at __syncthreads")
        self.launches.append((kernel, tuple(grid), tuple(block)))
        self.check_guards()
