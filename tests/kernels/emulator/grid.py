"""Run ``kernels/*.cu`` unchanged on the CPU: g++ + ``cuda_shim.h`` + ``launch.h``, via ctypes.

``build({"conv2d.cu": text, ...})`` compiles the given sources (real or mutated) into a shared
library, cached by content hash, and returns it; :class:`EmulatorRuntime` plugs that library
into ``gpunet.cuda.raw_ops.RawOps`` in place of CuPy. Arrays it allocates sit between NaN guard
zones that are checked after every launch, so out-of-bounds stores fail loudly and
out-of-bounds reads of guarded inputs (see :meth:`EmulatorRuntime.guarded`) poison results.

``__shared__`` storage is filled with 0xFF bytes (NaN) before every block: the variables declared
``__shared__`` in the sources are looked up in the library's symbol table (``nm``) and registered
with it (a linker section cannot be used: g++ ignores ``section`` attributes on statics of
templates, and a glob over ``.bss._ZZ*`` also takes libstdc++'s own statics, such as the
waiter pool behind ``std::barrier``, whose poisoning hangs the threads that sleep on it).
``GPUNET_EMU_SHUFFLE=<seed>`` (or ``EmulatorRuntime(shuffle=seed)``) runs the blocks of each
launch in a shuffled order, so a kernel whose blocks depend on each other's order fails.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy

from gpunet.cuda.raw_ops import KERNELS, SUFFIX

HERE = Path(__file__).resolve().parent
CXX = os.environ.get("CXX", "g++")
# hidden visibility: each library keeps its own __shared__ statics and launcher state (default
# visibility makes them STB_GNU_UNIQUE, shared by every emulator library loaded in the process)
FLAGS = ("-std=c++20", "-pthread", "-O1", "-fPIC", "-shared", "-fvisibility=hidden", "-Wall",
         "-Wno-unknown-pragmas", "-Werror")
TSAN_FLAGS = ("-fsanitize=thread", "-g")  # see build(tsan=True)
SHUFFLE_ENV = "GPUNET_EMU_SHUFFLE"
MIN_GUARD = 64  # NaN elements on each side of an emulator array: max(MIN_GUARD, its size)


class GuardError(AssertionError):
    """A kernel wrote outside the array it was given."""


class BarrierDivergence(AssertionError):
    """Threads of one block met different ``__syncthreads`` statements (undefined in CUDA)."""


def have_compiler() -> bool:
    """Whether the C++ compiler used by the emulator is on PATH."""
    return shutil.which(CXX) is not None


def shuffle_seed() -> int:
    """The block-order seed from ``GPUNET_EMU_SHUFFLE`` (0 or unset: grid order)."""
    text = os.environ.get(SHUFFLE_ENV, "").strip()
    try:
        return int(text or 0)
    except ValueError:
        raise ValueError(f"{SHUFFLE_ENV} must be an integer seed (0: blocks in grid order), "
                         f"got {text!r}") from None


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


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_GROUP = re.compile(r"\[[^\]]*\]|<[^<>]*>|\([^()]*\)")


def shared_names(text: str) -> set[str]:
    """The names of the variables declared ``__shared__`` in CUDA C ``text``."""
    names = set()
    for decl in re.findall(r"\b__shared__\b([^;{}]*);", _COMMENT.sub(" ", text)):
        for _ in range(3):  # nested brackets / template arguments
            decl = _GROUP.sub(" ", decl)
        first, *rest = decl.split(",")
        names.update(re.findall(r"\w+", first)[-1:])
        names.update(re.findall(r"\w+", part)[0] for part in rest if re.search(r"\w", part))
    return names


def _shared_symbols(lib_path: Path, names: set[str]) -> list[tuple[int, int, str]]:
    """(offset, size, name) of the data symbols of ``lib_path`` that are those variables, and
    first the offset of ``emu_set_shared`` (to find the load base)."""
    out = subprocess.run(["nm", "-S", "-C", "--defined-only", str(lib_path)], capture_output=True,
                         text=True, check=True).stdout
    found, seen = [], set()
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) != 4:
            continue
        name, short = parts[3], parts[3].rsplit("::", 1)[-1]
        if name == "emu_set_shared" and parts[2] == "T":
            found.insert(0, (int(parts[0], 16), 0, name))
        elif parts[2] in "bBdDuV" and short in names and (name == short or name.endswith("::" + short)):
            found.append((int(parts[0], 16), int(parts[1], 16), name))
            seen.add(short)
    if names - seen:
        raise RuntimeError(f"emulator build: __shared__ {sorted(names - seen)} not found in {lib_path} "
                           f"(nm), so it could not be poisoned; declared: {sorted(names)}")
    if not found or found[0][2] != "emu_set_shared":
        raise RuntimeError(f"emulator build: no emu_set_shared in {lib_path} (nm)")
    return found


def build(sources: dict[str, str], kernels: tuple[str, ...] | None = None, tsan: bool = False) -> ctypes.CDLL:
    """Compile ``{file name: CUDA C text}`` and load it. The kernels registered are those of
    ``raw_ops.KERNELS`` for each file name, or the base names ``kernels`` (``_f32``/``_f64``).
    ``tsan=True`` builds with ThreadSanitizer: load it only in a process started with libtsan
    preloaded (see :func:`tsan_runtime`)."""
    shim = "".join((HERE / f).read_text() for f in ("cuda_shim.h", "launch.h"))
    flags = FLAGS + TSAN_FLAGS if tsan else FLAGS
    key = (sorted(sources.items()), kernels, shim, flags, CXX)
    digest = hashlib.sha256(repr(key).encode()).hexdigest()
    folder = cache_dir() / digest[:20]
    lib_path, table = folder / "kernels.so", folder / "shared.txt"
    if not (lib_path.exists() and table.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        main = folder / "registry.cpp"
        main.write_text(_registry(sources, folder, kernels), encoding="utf-8")
        tmp = folder / f"kernels.{os.getpid()}.so"
        cmd = [CXX, *flags, f"-I{HERE}", str(main), "-o", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"emulator build failed: {' '.join(cmd)}\n{proc.stderr}")
        names = set().union(*(shared_names(text) for text in sources.values()))
        rows = _shared_symbols(tmp, names)
        tmp_table = folder / f"shared.{os.getpid()}.txt"
        tmp_table.write_text("".join(f"{o:x} {n:x} {name}\n" for o, n, name in rows), encoding="utf-8")
        os.replace(tmp, lib_path)
        os.replace(tmp_table, table)
    lib = ctypes.CDLL(str(lib_path))
    lib.emu_launch.argtypes = [ctypes.c_char_p] + [ctypes.c_uint] * 6 + [ctypes.c_void_p, ctypes.c_int,
                                                                          ctypes.c_ulonglong]
    lib.emu_launch.restype = ctypes.c_int
    lib.shared_symbols = _register_shared(lib, table)
    return lib


def _register_shared(lib: ctypes.CDLL, table: Path) -> list[tuple[int, int, str]]:
    """Hand the library the addresses of its ``__shared__`` storage (symbol offsets + load base);
    returns (address, bytes, name) of each variable."""
    rows = [line.split(maxsplit=2) for line in table.read_text(encoding="utf-8").splitlines()]
    base = ctypes.cast(lib.emu_set_shared, ctypes.c_void_p).value - int(rows[0][0], 16)
    shared = [(base + int(o, 16), int(n, 16), name) for o, n, name in rows[1:]]
    addresses = (ctypes.c_void_p * len(shared))(*(a for a, _, _ in shared))
    sizes = (ctypes.c_ulong * len(shared))(*(n for _, n, _ in shared))
    lib.emu_set_shared.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    lib.emu_set_shared.restype = None
    lib.emu_set_shared(len(shared), addresses, sizes)
    return shared


class EmulatorRuntime:
    """A ``raw_ops.Runtime`` over NumPy arrays and an emulator library from :func:`build`.

    ``serial=True`` runs the threads of a block one at a time between barriers, in an order that
    alternates each phase (deterministic; exposes missing ``__syncthreads``); the default runs
    them freely in parallel between barriers. ``shuffle``: a nonzero seed runs the blocks of each
    launch in a shuffled order (default: :func:`shuffle_seed`, i.e. ``GPUNET_EMU_SHUFFLE``).
    """

    xp = numpy
    array_type = numpy.ndarray

    def __init__(self, lib: ctypes.CDLL, serial: bool = False, shuffle: int | None = None) -> None:
        self._lib = lib
        self.serial = serial
        self.shuffle = shuffle_seed() if shuffle is None else shuffle
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
        rc = self._lib.emu_launch(kernel.encode(), *grid, *block, argv, int(self.serial), self.shuffle)
        if rc == 1:
            raise KeyError(f"kernel {kernel!r} is not in the emulator library")
        if rc == 2:
            raise BarrierDivergence(f"{kernel}: threads of a block met different __syncthreads")
        self.launches.append((kernel, tuple(grid), tuple(block)))
        self.check_guards()
