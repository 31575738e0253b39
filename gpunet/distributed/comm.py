"""The process group: MPI (mpi4py) start-up, rank facts, checked collectives, abort on failure.

MPI is imported only by :func:`init` (``import mpi4py`` initialises MPI). Every collective here
is non-blocking underneath and waited for with a deadline (``GPUNET_DIST_TIMEOUT`` seconds,
default 300), so a rank whose peer died or stopped raises :class:`DistributedError` instead of
hanging; :func:`abort` then ends every rank of the job.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy

from gpunet.distributed.agreed import is_agreed

DEFAULT_TIMEOUT = 300.0


class DistributedError(RuntimeError):
    """A collective failed or timed out, or the process group is not usable."""


@dataclass
class _Group:
    comm: Any  # an mpi4py Intracomm (a duplicate of COMM_WORLD)
    mpi: Any  # the mpi4py.MPI module
    rank: int
    size: int
    local_rank: int
    local_size: int
    timeout: float
    abort_on_error: bool = False  # an unhandled exception (or a stuck NCCL bucket) ends the job


_group: _Group | None = None


def mpi_available() -> tuple[bool, str]:
    """Whether mpi4py imports (without initialising MPI), and why not."""
    import importlib.util

    if importlib.util.find_spec("mpi4py") is None:
        return False, "mpi4py is not installed (pip install 'gpunet[mpi]')"
    return True, "mpi4py is installed"


def _timeout_from_env() -> float:
    raw = os.environ.get("GPUNET_DIST_TIMEOUT", "")
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise DistributedError(f"GPUNET_DIST_TIMEOUT: expected seconds, got {raw!r}") from None


def init(timeout: float | None = None, abort_on_error: bool = True, device: bool = True) -> None:
    """Join the MPI job this process was started in (``mpiexec -n N ...``; a plain start is a
    job of one). Finds rank, size and the local rank (rank among the processes of this host);
    on CuPy selects device ``local_rank % device_count`` (``device=False``: later, by
    :func:`select_device`). With ``abort_on_error`` an unhandled
    exception on any rank prints one line and aborts the whole job (no rank waits forever).
    Calling it again does nothing."""
    global _group
    if _group is not None:
        return
    ok, why = mpi_available()
    if not ok:
        raise DistributedError(f"distributed training needs MPI: {why}")
    try:
        from mpi4py import MPI
    except Exception as exc:  # a broken MPI library fails here
        raise DistributedError(f"distributed training needs MPI: mpi4py does not load: {exc}") from exc
    comm = MPI.COMM_WORLD.Dup()
    comm.Set_errhandler(MPI.ERRORS_RETURN)
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    _group = _Group(comm=comm, mpi=MPI, rank=comm.Get_rank(), size=comm.Get_size(),
                    local_rank=local.Get_rank(), local_size=local.Get_size(),
                    timeout=_timeout_from_env() if timeout is None else float(timeout),
                    abort_on_error=abort_on_error)
    local.Free()
    if device:
        select_device()
    if abort_on_error:
        _install_excepthook()


def select_device() -> None:
    """On CuPy, use device ``local_rank % device_count`` (init does it unless told not to)."""
    from gpunet import backend

    if backend.current() != "cupy":
        return
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    cupy.cuda.Device(get_local_rank() % max(count, 1)).use()


def is_initialized() -> bool:
    return _group is not None


def group() -> _Group:
    if _group is None:
        raise DistributedError("gpunet.distributed is not initialised: call gpunet.distributed.init() first "
                               "(and start the processes with mpiexec -n N)")
    return _group


def get_rank() -> int:
    """This process's rank (0 when not initialised)."""
    return _group.rank if _group else 0


def get_world_size() -> int:
    """Number of processes in the job (1 when not initialised)."""
    return _group.size if _group else 1


def get_local_rank() -> int:
    """Rank among the processes on this host (picks the GPU)."""
    return _group.local_rank if _group else 0


def is_main_process() -> bool:
    return get_rank() == 0


def wait(request: Any, what: str, timeout: float | None = None) -> None:
    """Wait for an MPI request, polling, until ``timeout`` (the group's by default)."""
    g = group()
    limit = g.timeout if timeout is None else timeout
    deadline = time.monotonic() + limit
    pause = 0.0
    try:
        while not request.Test():
            if time.monotonic() > deadline:
                raise DistributedError(f"rank {g.rank}: {what} did not complete within {limit:g} s; another rank "
                                       f"has probably failed or stopped (GPUNET_DIST_TIMEOUT sets the limit)")
            time.sleep(pause)
            pause = min(pause + 2e-5, 1e-3)
    except g.mpi.Exception as exc:
        raise DistributedError(f"rank {g.rank}: {what} failed: {exc.Get_error_string()}") from exc


def _checked(what: str) -> contextlib.AbstractContextManager[None]:
    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        g = group()
        try:
            yield
        except g.mpi.Exception as exc:
            raise DistributedError(f"rank {g.rank}: {what} failed: {exc.Get_error_string()}") from exc
    return guard()


def barrier() -> None:
    """Every rank waits here until all have arrived (bounded by the timeout)."""
    g = group()
    with _checked("barrier"):
        request = g.comm.Ibarrier()
    wait(request, "barrier")


def allreduce_sum(values: Any, what: str = "all-reduce") -> numpy.ndarray:
    """Elementwise sum over the ranks of a small host array (a copy; float64 or int64 kept)."""
    g = group()
    buf = numpy.ascontiguousarray(numpy.array(values, copy=True))
    with _checked(what):
        request = g.comm.Iallreduce(g.mpi.IN_PLACE, buf, op=g.mpi.SUM)
    wait(request, what)
    return buf


def broadcast_array(array: numpy.ndarray, root: int = 0, what: str = "broadcast") -> numpy.ndarray:
    """``array`` of rank ``root`` on every rank (same shape and dtype everywhere); in place."""
    g = group()
    buf = numpy.ascontiguousarray(array)
    with _checked(what):
        request = g.comm.Ibcast(buf, root=root)
    wait(request, what)
    return buf


def broadcast_object(obj: Any, root: int = 0) -> Any:
    """A small picklable object of rank ``root`` (e.g. the NCCL unique id) on every rank."""
    g = group()
    with _checked("broadcast"):
        return g.comm.bcast(obj, root=root)


def abort(message: str, code: int = 1) -> None:
    """Print ``gpunet: error: rank R/N: message`` and end every rank of the job now."""
    rank, size = get_rank(), get_world_size()
    message = message.removeprefix(f"rank {rank}: ")
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    sys.stderr.write(f"gpunet: error: rank {rank}/{size}: {message}\n")
    sys.stderr.flush()
    if _group is not None:
        _let_the_launcher_read(sys.stderr)
        _group.mpi.COMM_WORLD.Abort(code)
    os._exit(code)  # pragma: no cover - Abort does not return


#: How long :func:`abort` waits for the launcher to take its line off the stderr pipe.
FORWARD_WAIT = 1.0


def _unread_bytes(fd: int) -> int:
    """Bytes written to the pipe or socket ``fd`` that its reader has not taken yet (0 if unknown)."""
    import array
    import fcntl
    import termios

    count = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, count, True)
    except (OSError, ValueError):
        return 0
    return int(count[0])


def _let_the_launcher_read(stream: Any) -> None:
    """Before ``MPI_Abort``: wait (at most :data:`FORWARD_WAIT` s) until the launcher's proxy has
    read this rank's stderr pipe, then a moment for it to pass the line on. mpich's hydra kills
    the job on an abort and may do so before forwarding what a rank wrote just before it, so the
    one error line was sometimes lost."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    deadline = time.monotonic() + FORWARD_WAIT
    while _unread_bytes(fd) > 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)


def _install_excepthook() -> None:
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        if os.environ.get("GPUNET_DEBUG"):
            previous(kind, exc, tb)
        abort(f"{kind.__name__}: {exc}" if not isinstance(exc, DistributedError) else str(exc))

    sys.excepthook = hook


@contextlib.contextmanager
def abort_on_error(describe: Any = None) -> Iterator[None]:
    """Inside: any exception (and Ctrl-C) ends the whole job with one line, instead of this rank
    leaving while the others wait in a collective. ``describe(exc)`` turns it into the message.
    An interrupt all ranks agreed on (:mod:`gpunet.distributed.interrupts`) passes through."""
    try:
        yield
    except BaseException as exc:
        if not is_agreed(exc):
            _abort_for(exc, describe)
        raise


def _abort_for(exc: BaseException, describe: Any) -> None:
    """End the job for ``exc``; returns for a clean exit, a job of one, or no group."""
    if isinstance(exc, SystemExit):
        if exc.code not in (None, 0):
            abort(f"exited with status {exc.code}", code=int(exc.code) if isinstance(exc.code, int) else 1)
        return
    if _group is None or get_world_size() == 1:
        return
    if os.environ.get("GPUNET_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, KeyboardInterrupt):
        abort("interrupted", code=130)
    abort(describe(exc) if describe else f"{type(exc).__name__}: {exc}")


def _reset_for_tests() -> None:
    global _group
    _group = None
