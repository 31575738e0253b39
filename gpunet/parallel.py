"""Threads: one setting (``settings.threads``) drives NumPy's BLAS and numba's pool together.

``gpunet.set_num_threads(n)`` (:mod:`gpunet.settings`; or ``gpunet.using(threads=n)``, or ``--threads`` on the CLI)
sets the BLAS libraries' thread count (through threadpoolctl, ``user_api="blas"``) and numba's
(``numba.set_num_threads``, clamped to the pool numba started) to the same ``n``. The default is
the number of cores this process may run on (``os.sched_getaffinity``).

No oversubscription: gpunet never runs BLAS's own threads inside a numba parallel region. The
CPU kernels (:mod:`gpunet.ops.conv2d_cpu`, :mod:`gpunet.ops.linear_cpu`) split the batch over
numba's threads and call BLAS (``np.dot``, SciPy's library) from each at one thread
(:func:`blas_single`); only a user's large ``matmul`` (``gpunet.functional.matmul``), outside any
region, uses BLAS's threads (:func:`blas_for`).

numba's OpenMP pool is started with a bounded spin (``GOMP_SPINCOUNT`` = :data:`SPIN_COUNT`,
unless the user set it or ``OMP_WAIT_POLICY``): after a region its threads spin for a few
hundred microseconds, covering the gaps between the regions of a training step, then sleep.
Measured on the 2-core VM: a region after a sleep costs 40-60 us (waking an idle vCPU), after a
spin 2-6 us; a spinning pool does not hold a core for longer than that once the step ends (the
earlier PASSIVE policy slept at once and made LeNet's 2-thread step no faster than 1 thread;
GOMP's default spin, 300000, kept numba's threads spinning against BLAS's for milliseconds). The
variable is set only while numba's pool starts (other OpenMP users, e.g. PyTorch, are unaffected).
"""

from __future__ import annotations

import os
from typing import Any

_state: dict[str, Any] = {"applied": None, "controller": None}

#: How long numba's OpenMP threads spin for the next region before they sleep (GOMP's spin count;
#: see the module's docstring for the measurement that chose it).
SPIN_COUNT = 30_000


def available_cores() -> int:
    """The cores this process may use (``sched_getaffinity``; else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _start_numba_pool() -> Any:
    import numba

    if not _state.get("numba_started"):
        set_here = not ({"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(os.environ))
        if set_here:
            os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
        try:
            from numba.np.ufunc import parallel

            parallel._launch_threads()
        finally:
            if set_here:
                os.environ.pop("GOMP_SPINCOUNT", None)
        _state["numba_started"] = True
    return numba


def _blas_controllers() -> list[Any]:
    controller = _state["controller"]
    if controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # a declared dependency; without it only numba's count is set
            return []
        controller = _state["controller"] = ThreadpoolController().select(user_api="blas")
    return list(controller.lib_controllers)


def refresh() -> None:
    """Forget the BLAS libraries found so far (call after another one may have been loaded)
    and apply the count again on the next :func:`apply`."""
    _state["controller"], _state["applied"], _state["blas"] = None, None, None


def apply(threads: int) -> None:
    """Set BLAS's and numba's thread counts to ``threads`` (cheap when unchanged)."""
    numba = _start_numba_pool()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    if _state["applied"] != threads or _state.get("blas") != threads:
        _set_blas(threads)
        _state["applied"] = threads


def _set_blas(threads: int) -> None:
    """Set the BLAS libraries' thread count (remembered, so that an unchanged count costs nothing)."""
    for lib in _blas_controllers():
        lib.set_num_threads(threads)
    _state["blas"] = threads


#: A GEMM of at least this many multiply-adds puts BLAS back to the ``threads`` setting after a
#: batch split left it at one thread (:func:`over_batch`); smaller ones (LeNet's linear layers,
#: 3.1M) stay single-threaded, so OpenBLAS's worker is never woken to spin against ours.
BLAS_THREADED_MIN = 1 << 23


def blas_for(multiply_adds: int) -> None:
    """Before a GEMM: BLAS at the ``threads`` setting again if this GEMM is large enough to gain."""
    applied = _state["applied"]
    if applied and applied > 1 and _state.get("blas") == 1 and multiply_adds >= BLAS_THREADED_MIN:
        _set_blas(applied)


def blas_threads() -> int | None:
    """The thread count BLAS reports now (``None`` without a BLAS threadpoolctl can see)."""
    libs = _blas_controllers()
    return int(libs[0].get_num_threads()) if libs else None


def blas_single() -> None:
    """Before a region whose threads call BLAS themselves: BLAS at one thread, so that ``threads``
    callers never start ``threads`` BLAS threads each. It *stays* at one until the ``threads``
    setting next changes (:func:`apply`) or a large GEMM asks (:func:`blas_for`): restoring it
    after each region made the next 2-thread GEMM (LeNet's small linear layers) wake OpenBLAS's
    worker, which then spins ~0.1 s against numba's (LeNet, 2 threads, machine shared with one
    busy process: 79 ms/step, 78 ms of it CPU, against 8.6 ms with BLAS left at one thread)."""
    if _state.get("blas", 1) != 1:
        _set_blas(1)


def load_kernel_blas() -> None:
    """Load the BLAS that numba's ``np.dot`` calls (SciPy's), so that the thread settings reach it."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401
    except ImportError as exc:  # a declared dependency
        raise ImportError(f"gpunet's CPU kernels need SciPy (numba's np.dot calls its BLAS): {exc}") from exc
    refresh()
