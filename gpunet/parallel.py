"""Threads: one setting (``settings.threads``) drives NumPy's BLAS and numba's pool together.

``gpunet.set_num_threads(n)`` (:mod:`gpunet.settings`; or ``gpunet.using(threads=n)``, or ``--threads`` on the CLI)
sets the BLAS libraries' thread count (through threadpoolctl, ``user_api="blas"``) and numba's
(``numba.set_num_threads``, clamped to the pool numba started) to the same ``n``. The default is
the number of cores this process may run on (``os.sched_getaffinity``).

No oversubscription: gpunet never calls BLAS from inside a numba parallel region, so at any
moment only one of the two pools works. The other must not steal its cores while idle:
numba's OpenMP pool is started with ``OMP_WAIT_POLICY=PASSIVE`` (unless the user set it), so
its threads sleep after a parallel region instead of spinning for GOMP's default spin count,
which, measured on the 2-core machine, made the BLAS call that follows a numba region up to
10x slower. The variable is set only while numba's pool starts (other OpenMP users, e.g.
PyTorch, are unaffected).
"""

from __future__ import annotations

import os
from typing import Any

_state: dict[str, Any] = {"applied": None, "controller": None}


def available_cores() -> int:
    """The cores this process may use (``sched_getaffinity``; else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _start_numba_pool() -> Any:
    import numba

    if not _state.get("numba_started"):
        set_here = "OMP_WAIT_POLICY" not in os.environ
        if set_here:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        try:
            from numba.np.ufunc import parallel

            parallel._launch_threads()
        finally:
            if set_here:
                os.environ.pop("OMP_WAIT_POLICY", None)
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
    _state["controller"], _state["applied"] = None, None


def apply(threads: int) -> None:
    """Set BLAS's and numba's thread counts to ``threads`` (cheap when unchanged)."""
    numba = _start_numba_pool()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    if _state["applied"] != threads:
        for lib in _blas_controllers():
            lib.set_num_threads(threads)
        _state["applied"] = threads


def blas_threads() -> int | None:
    """The thread count BLAS reports now (``None`` without a BLAS threadpoolctl can see)."""
    libs = _blas_controllers()
    return int(libs[0].get_num_threads()) if libs else None


_pool: dict[int, Any] = {}


def _executor(workers: int) -> Any:
    from concurrent.futures import ThreadPoolExecutor

    pool = _pool.get(workers)
    if pool is None:
        pool = _pool[workers] = ThreadPoolExecutor(workers, thread_name_prefix="gpunet-batch")
    return pool


def split(count: int, parts: int) -> list[tuple[int, int]]:
    """``range(count)`` cut into at most ``parts`` contiguous, near-equal, non-empty ``(lo, hi)``."""
    parts = max(1, min(parts, count))
    return [(count * k // parts, count * (k + 1) // parts) for k in range(parts)]


def over_batch(count: int, threads: int, work: Any) -> None:
    """``work(lo, hi)`` over ``range(count)`` split in ``threads`` parts, one per thread.

    The parts run in Python threads (the caller does the first): ``work`` must release the GIL
    (nogil numba kernels, BLAS calls, NumPy ufuncs). While they run BLAS is limited to one
    thread, so that ``threads`` callers never start ``threads`` BLAS threads each."""
    ranges = split(count, threads)
    if len(ranges) == 1:
        work(0, count)
        return
    libs = _blas_controllers() if (_state["applied"] or 1) > 1 else []
    for lib in libs:
        lib.set_num_threads(1)
    try:
        futures = [_executor(len(ranges) - 1).submit(work, lo, hi) for lo, hi in ranges[1:]]
        work(*ranges[0])
        for future in futures:
            future.result()
    finally:
        for lib in libs:
            lib.set_num_threads(_state["applied"])
