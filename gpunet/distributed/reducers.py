"""How a bucket's flat gradient buffer is summed over the ranks.

- :class:`MPIReducer`: NumPy buffers, non-blocking ``Iallreduce`` (in place).
- :class:`NCCLReducer`: CuPy buffers, ``ncclAllReduce`` on a dedicated stream. Each launch
  records an event on the compute stream (the bucket is packed), makes the NCCL stream wait for
  it, reduces, and records a *done* event; :meth:`NCCLReducer.wait` makes the compute stream wait
  for that bucket's event only, without blocking the host; a watchdog thread aborts the NCCL
  communicator (and the job) when a bucket is not done within the timeout.
- :class:`StagedMPIReducer`: CuPy buffers when NCCL is not usable: copy to the host, MPI, copy back.

:func:`choose` picks one for a device; :func:`nccl_status` says whether NCCL is usable and why.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

from gpunet.distributed import comm


class Reducer:
    """Sums a bucket's ``flat`` buffer over the ranks, in place, without blocking at launch."""

    name = "?"

    def launch(self, bucket: Any) -> None:
        raise NotImplementedError

    def progress(self) -> None:
        """Let in-flight reductions advance (MPI makes progress only inside MPI calls)."""

    def wait(self, bucket: Any) -> None:
        raise NotImplementedError


class MPIReducer(Reducer):
    """NumPy arrays over MPI: ``Iallreduce(IN_PLACE, flat, SUM)`` per bucket."""

    name = "mpi"

    def __init__(self) -> None:
        self.group = comm.group()
        self._pending: list[Any] = []

    def launch(self, bucket: Any) -> None:
        g = self.group
        try:
            bucket.request = g.comm.Iallreduce(g.mpi.IN_PLACE, bucket.flat, op=g.mpi.SUM)
        except g.mpi.Exception as exc:
            raise comm.DistributedError(f"rank {g.rank}: all-reduce of gradient bucket {bucket.index} failed to "
                                        f"start: {exc.Get_error_string()}") from exc
        self._pending.append(bucket.request)

    def progress(self) -> None:
        if self._pending and self.group.mpi.Request.Testall(self._pending):
            self._pending.clear()

    def wait(self, bucket: Any) -> None:
        comm.wait(bucket.request, f"all-reduce of gradient bucket {bucket.index}")
        bucket.request = None
        self._pending = [r for r in self._pending if r]


class StagedMPIReducer(MPIReducer):
    """CuPy arrays over MPI through host memory (the fallback when NCCL is not usable)."""

    name = "mpi-staged"

    def launch(self, bucket: Any) -> None:
        import cupy

        device_flat = bucket.flat
        bucket.host = cupy.asnumpy(device_flat)  # waits for the compute stream to finish the bucket
        bucket.flat = bucket.host
        try:
            super().launch(bucket)
        finally:
            bucket.flat = device_flat

    def wait(self, bucket: Any) -> None:
        super().wait(bucket)
        bucket.flat.set(bucket.host)


class NCCLReducer(Reducer):
    """CuPy arrays over NCCL on a dedicated stream, ordered against the compute stream by events.

    :meth:`wait` never blocks the host: the compute stream waits for the bucket's *done* event and
    a :class:`~gpunet.distributed.watchdog.Watchdog` thread checks it completes within
    ``timeout``; if not (or NCCL reports an error) the communicator is aborted and, with
    ``abort_job``, every rank of the job ends with one line; otherwise the next launch or wait
    raises :class:`~gpunet.distributed.DistributedError`.

    The CUDA/NCCL objects are injected so the logic runs on stand-ins in the tests:
    ``nccl_comm.allReduce(send, recv, count, dtype, op, stream_ptr)`` (and optionally
    ``abort()``, ``check_async_error()``), ``stream`` (``ptr``, ``wait_event``), ``new_event()``
    (``record(stream)``, ``done``), ``current_stream()``, ``ptr_of(array)`` and ``dtype_of(array)``
    (NCCL's dtype code).
    """

    name = "nccl"

    def __init__(self, nccl_comm: Any, stream: Any, new_event: Callable[[], Any],
                 current_stream: Callable[[], Any], ptr_of: Callable[[Any], Any], dtype_of: Callable[[Any], int],
                 sum_op: int, rank: int, timeout: float, abort_job: bool = False,
                 watchdog_interval: float | None = None, thread_setup: Callable[[], None] | None = None) -> None:
        from gpunet.distributed.watchdog import Watchdog

        self.comm, self.stream, self.new_event = nccl_comm, stream, new_event
        self.current_stream, self.ptr_of, self.dtype_of = current_stream, ptr_of, dtype_of
        self.sum_op, self.rank, self.timeout, self.abort_job = sum_op, rank, timeout, abort_job
        self.watchdog = Watchdog(timeout, self._failed, watchdog_interval,
                                 check=getattr(nccl_comm, "check_async_error", None), thread_setup=thread_setup)

    @classmethod
    def create(cls) -> NCCLReducer:
        """A communicator over all ranks: rank 0's unique id is broadcast through MPI."""
        import cupy
        from cupy.cuda import nccl

        g = comm.group()
        uid = comm.broadcast_object(nccl.get_unique_id() if g.rank == 0 else None)
        nccl_comm = nccl.NcclCommunicator(g.size, uid, g.rank)
        codes = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}
        device = cupy.cuda.Device().id
        return cls(nccl_comm, cupy.cuda.Stream(non_blocking=True), cupy.cuda.Event,
                   cupy.cuda.get_current_stream, lambda a: a.data.ptr, lambda a: codes[a.dtype.name],
                   nccl.NCCL_SUM, g.rank, g.timeout, abort_job=g.abort_on_error and g.size > 1,
                   thread_setup=lambda: cupy.cuda.Device(device).use())

    def _failed(self, message: str) -> None:
        """The watchdog's verdict (on its thread): end the stuck NCCL work, then the job."""
        abort = getattr(self.comm, "abort", None)
        if abort is not None:
            with contextlib.suppress(Exception):  # already gone: the message below is what matters
                abort()
        if self.abort_job:
            comm.abort(message)

    def _check(self) -> None:
        if self.watchdog.error is not None:
            raise comm.DistributedError(self.watchdog.error)

    def launch(self, bucket: Any) -> None:
        self._check()
        packed = self.new_event()
        packed.record(self.current_stream())  # the bucket's gradients are in its buffer
        self.stream.wait_event(packed)
        flat = bucket.flat
        self.comm.allReduce(self.ptr_of(flat), self.ptr_of(flat), flat.size, self.dtype_of(flat), self.sum_op,
                            self.stream.ptr)
        bucket.done = self.new_event()
        bucket.done.record(self.stream)

    def wait(self, bucket: Any) -> None:
        self._check()
        self.watchdog.watch(bucket.done, f"rank {self.rank}: NCCL all-reduce of gradient bucket {bucket.index}")
        self.current_stream().wait_event(bucket.done)  # the optimizer's stream waits for this bucket only
        bucket.done = None


def nccl_status() -> tuple[bool, str]:
    """Whether CuPy's NCCL bindings are usable here, and why not (no device is touched)."""
    if os.environ.get("GPUNET_DIST_NCCL", "1") == "0":
        return False, "GPUNET_DIST_NCCL=0"
    try:
        from cupy.cuda import nccl
    except Exception as exc:
        return False, f"cupy.cuda.nccl does not import: {exc}"
    if not getattr(nccl, "available", True):
        return False, "this CuPy was built without NCCL (pip install nvidia-nccl-cu12)"
    try:
        version = nccl.get_version()
    except Exception as exc:
        return False, f"NCCL does not load: {exc}"
    return True, f"NCCL {version // 10000}.{version // 100 % 100}.{version % 100}" if version >= 10000 else \
        f"NCCL {version}"


_notified: set[str] = set()


def choose(device: str) -> Reducer:
    """The reducer for gradients on ``device`` (``numpy``: MPI; ``cupy``: NCCL, else MPI via the host)."""
    if device == "numpy":
        return MPIReducer()
    ok, why = nccl_status()
    if ok:
        try:
            return NCCLReducer.create()
        except Exception as exc:  # e.g. NCCL cannot open the devices
            ok, why = False, f"NCCL communicator failed: {exc}"
    if why not in _notified and not os.environ.get("GPUNET_QUIET") and comm.is_main_process():  # once a job
        _notified.add(why)
        print(f"gpunet: distributed: NCCL is not usable ({why}); all-reducing CuPy gradients over MPI through "
              f"host memory (slower)", file=sys.stderr)
    return StagedMPIReducer()


def describe_choice(gpu_usable: bool) -> str:
    """One line for ``gpunet info``: which all-reduce distributed training would use here."""
    ok, why = comm.mpi_available()
    if not ok:
        return f"unavailable: {why}"
    if not gpu_usable:
        return "mpi (NumPy gradients, Iallreduce)"
    nccl_ok, nccl_why = nccl_status()
    return f"nccl ({nccl_why})" if nccl_ok else f"mpi with host staging (NCCL not usable: {nccl_why})"
