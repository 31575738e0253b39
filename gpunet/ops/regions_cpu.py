"""What every numba CPU fast path shares: entering a parallel region, claiming its chunks,
reusable scratch buffers.

An op's work is a serial ``*_part`` over a range of its batch and a thin ``parallel=True``
wrapper with one ``prange`` iteration per thread (:func:`in_parts`). The kernels whose work is
per sample (conv2d, pooling after a ReLU) cut the batch into :func:`chunk_count` chunks, fixed by
its size and never by the thread count, and each thread claims the next unclaimed chunk
(:func:`next_chunk`, an atomic add) until none is left:

- **balance**: a thread that runs slower (a busy or shared core, a laptop's efficiency core)
  takes fewer chunks instead of holding the region up. LeNet's conv2 forward on the 2-core VM,
  1 -> 2 threads over 20 interleaved blocks: static halves 1.18x-2.03x (median 1.59x), claimed
  chunks 1.52x-2.16x (median 1.73x); in the slow blocks the slower thread took 39-44% of them;
- **determinism**: a chunk's sums (a weight gradient's per-chunk partial) are the same whichever
  thread computes them, and the partials are added in chunk order, so results are bit-identical
  at every thread count.

The linear layer's GEMMs (:mod:`gpunet.ops.linear_cpu`) and the recurrent kernels keep one
contiguous part per thread (a chunk's GEMM packs the whole other operand again: the MLP's 2-thread
step took 1.38 ms with 2 chunks of rows, 1.77-1.93 ms with 4 and 2.33-2.45 ms with 8), but the
threads claim those parts too (:func:`claim_part`): a thread that starts late finds its part done
by one that finished, instead of the region waiting for it.

The parts are ``inline="always"``: numba then compiles each part's body once, inside the
wrapper, instead of compiling the part on its own and again for the parallel context (a cold
LeNet step compiled in 13.1 s against 16.1 s). Elementwise kernels (ReLU, pooling, SGD) pick their parallel or serial
compilation by size (:func:`run_sized`). numba's ``np.dot`` inside the regions calls SciPy's
BLAS, loaded here so that the thread setting reaches it (:func:`gpunet.parallel.load_kernel_blas`).
"""

from __future__ import annotations

import threading
import types
from typing import Any

import numba
import numpy as np
from numba import types as nbtypes
from numba.core import cgutils
from numba.extending import intrinsic

from gpunet import parallel, settings

Array = Any
_local = threading.local()
settings.apply_threads()  # before numba's pool starts: see gpunet.parallel
parallel.load_kernel_blas()  # numba's np.dot calls SciPy's BLAS: one thread inside our regions


#: numba's pool size (fixed once the pool starts): no thread count above it can run.
POOL = numba.config.NUMBA_NUM_THREADS


#: Chunks per region at most: enough for a thread that runs at half speed to cost little, and
#: for 32 threads to share a batch (each claim is one atomic add; a conv weight gradient keeps
#: one partial sum per chunk, added up after the region: LeNet's conv2, 32 x 2400 floats).
CHUNKS = 32


@numba.njit(cache=True, nogil=True, inline="always")
def chunk_count(n):  # pragma: no cover - compiled
    """How many chunks ``n`` items (samples, rows) are cut into: a function of ``n`` alone."""
    return max(1, min(n, CHUNKS))


@numba.njit(cache=True, nogil=True, inline="always")
def chunk_bounds(n, chunk, chunks):  # pragma: no cover - compiled
    """``(lo, hi)``: the items of ``chunk`` out of ``chunks`` equal contiguous chunks of ``n``."""
    return n * chunk // chunks, n * (chunk + 1) // chunks


@intrinsic
def _fetch_add(typingctx, counter, index):  # pragma: no cover - compiled
    """``counter[index] += 1`` atomically; the value before the add."""
    sig = nbtypes.int64(counter, index)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, array, [args[1]])
        return builder.atomic_rmw("add", pointer, context.get_constant(nbtypes.int64, 1), "monotonic")

    return sig, codegen


@numba.njit(cache=True, nogil=True, inline="always")
def next_chunk(counter):  # pragma: no cover - compiled
    """The next chunk no thread has claimed (``counter``: an int64 array of one zero per
    region; every chunk index goes to exactly one caller, and each past the last chunk to every
    caller once the work is out)."""
    return _fetch_add(counter, 0)


@numba.njit(cache=True, nogil=True, inline="always")
def claim(counter, n):  # pragma: no cover - compiled
    """``(chunk, lo, hi)``: the next unclaimed chunk of ``n`` items and its items ``lo:hi``, or
    ``(-1, 0, 0)`` once every chunk is taken. A region's wrapper runs, per thread::

        chunk, lo, hi = claim(counter, n)   # counter = np.zeros(1, np.int64), once per region
        while chunk >= 0:
            part(..., lo, hi)
            chunk, lo, hi = claim(counter, n)
    """
    chunks = chunk_count(n)
    chunk = next_chunk(counter)
    if chunk >= chunks:
        return -1, 0, 0
    lo, hi = chunk_bounds(n, chunk, chunks)
    return chunk, lo, hi


@numba.njit(cache=True, nogil=True, inline="always")
def claim_part(counter, parts):  # pragma: no cover - compiled
    """The next unclaimed one of ``parts`` fixed parts (a GEMM kernel's: one per thread), or -1.
    When every thread is on time each takes one part, as a static split would; a thread that
    starts late (its core busy elsewhere) finds its part already taken by one that finished,
    instead of the region waiting for it."""
    part = next_chunk(counter)
    return part if part < parts else -1


def threads() -> int:
    """The ``threads`` setting in force, at most numba's pool (what a region's parts may use).
    Read from the settings: ``numba.get_num_threads()`` costs a few microseconds per call."""
    return min(settings.current().threads, POOL)


def scratch(name: str, shape: tuple[int, ...], dtype: Any, zero: bool = False) -> Array:
    """A per-thread reusable buffer for a transient (never returned, never saved) array
    (``zero``: zero-filled when first made; a kernel that writes only its interior keeps it so)."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    key = (name, shape, dtype)
    buf = pool.get(key)
    if buf is None:
        if len(pool) > 64:  # many shapes (a sweep): do not hoard memory
            pool.clear()
        buf = pool[key] = (np.zeros if zero else np.empty)(shape, dtype=dtype)
    return buf


#: Below this many elements a kernel runs its serial compilation: entering a parallel region
#: costs more than the work (on a busy machine a region also waits for its slowest thread).
PARALLEL_MIN = 1 << 17
_SERIAL: dict[Any, Any] = {}


def serial_version(kernel: Any) -> Any:
    """``kernel`` compiled without ``parallel`` (``prange`` as ``range``), under its own name so
    that its disk cache is its own."""
    serial = _SERIAL.get(kernel)
    if serial is None:
        f = kernel.py_func
        copy = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__)
        copy.__qualname__ = f.__qualname__ + "_serial"
        serial = _SERIAL[kernel] = numba.njit(cache=True, nogil=True)(copy)
    return serial


def run_sized(kernel: Any, work: int, *args: Any) -> None:
    """``kernel(*args)``: its parallel compilation for large ``work`` with more than one thread,
    else the same code compiled serially."""
    if work < PARALLEL_MIN or threads() == 1:
        kernel = serial_version(kernel)
    kernel(*args)


def in_parts(parallel_parts: Any, parts: int, *args: Any) -> None:
    """``part(*args, t, parts)`` for every ``t`` through its parallel wrapper, one part per thread
    (BLAS held at one thread first when split: its callers are our threads). One part runs
    through the wrapper too, on the calling thread (about 3 us): calling the part directly would
    compile it a second time, outside the parallel context."""
    if parts > 1:
        parallel.blas_single()
    parallel_parts(*args, parts)
