"""Stand-in ``cupy.cuda.nccl``: NCCL between the ranks of the MPI job (mpi4py), one device each.

A collective on a non-null stream starts an MPI ``Iallreduce``/``Ibcast`` of a private copy of
its buffer and is enqueued on the stream (see ``cupy.cuda.Stream``). It is refused
(``StreamOrderError``) unless the stream waited for an event recorded on the null stream after
the latest device op (the one that produced the buffer). Until the null stream waits for an
event recorded on the NCCL stream after it, the output buffer reads as NaN and touching it raises
``StreamOrderError``; then the result is copied in. ``abort()`` drops what is in flight.
On the null stream a collective completes before the call returns.
"""

from __future__ import annotations

import os as _os
from typing import Any as _Any

import numpy as _np

from cupy._module import install as _install
from cupy._standin import IN_FLIGHT as _IN_FLIGHT
from cupy._standin import MANIFEST as _MANIFEST
from cupy._standin import _poison
from cupy._standin import not_implemented as _not_implemented
from cupy.cuda import _BY_PTR, _STREAMS, _discard

NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG = 0, 1, 2, 3, 4
NCCL_INT8 = NCCL_CHAR = 0
NCCL_UINT8 = 1
NCCL_INT32 = NCCL_INT = 2
NCCL_UINT32 = 3
NCCL_INT64 = 4
NCCL_UINT64 = 5
NCCL_FLOAT16 = NCCL_HALF = 6
NCCL_FLOAT32 = NCCL_FLOAT = 7
NCCL_FLOAT64 = NCCL_DOUBLE = 8
NCCL_BFLOAT16 = 9
available = True

_VERSION = 22703  # NCCL 2.27.3
_DTYPES = {0: "int8", 1: "uint8", 2: "int32", 3: "uint32", 4: "int64", 5: "uint64", 6: "float16", 7: "float32",
           8: "float64"}
_NAMES = {0: "NCCL_ERROR_SUCCESS", 1: "NCCL_ERROR_UNHANDLED_CUDA_ERROR", 2: "NCCL_ERROR_SYSTEM_ERROR",
          3: "NCCL_ERROR_INTERNAL_ERROR", 4: "NCCL_ERROR_INVALID_ARGUMENT", 5: "NCCL_ERROR_INVALID_USAGE",
          6: "NCCL_ERROR_REMOTE_ERROR"}
_STRINGS = {2: "unhandled system error (run with NCCL_DEBUG=INFO for details)",
            4: "invalid argument (run with NCCL_DEBUG=WARN for details)",
            5: "invalid usage (run with NCCL_DEBUG=WARN for details)",
            6: "remote process exited or there was a network error"}
_INVALID_ARGUMENT, _INVALID_USAGE, _REMOTE_ERROR = 4, 5, 6
_group: list[_Any] = []  # calls deferred between groupStart() and groupEnd()
_group_depth = [0]


class NcclError(RuntimeError):
    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"{_NAMES.get(status, status)}: {_STRINGS.get(status, 'unknown result code')}")

    def __reduce__(self) -> _Any:
        return (type(self), (self.status,))


def _error(status: int, detail: str) -> NcclError:
    exc = NcclError(status)
    exc.args = (f"{exc.args[0]} [stand-in: {detail}]",)
    return exc


def check_status(status: int) -> None:
    if status != 0:
        raise NcclError(status)


def get_build_version() -> int:
    return _VERSION


def get_version() -> int:
    return _VERSION


def get_unique_id() -> bytes:
    return _os.urandom(128)


def groupStart() -> None:  # noqa: N802 - CuPy's name
    _group_depth[0] += 1


def groupEnd() -> None:  # noqa: N802
    if _group_depth[0] == 0:
        raise _error(_INVALID_USAGE, "groupEnd() without groupStart()")
    _group_depth[0] -= 1
    if _group_depth[0] == 0:
        calls, _group[:] = list(_group), []
        for work in calls:
            work.begin()
        for work in calls:
            if not work.stream.ptr:
                work.stream._complete(work.seq, block=True)


class _Collective:
    """One NCCL call in flight: an MPI request over a private copy, delivered into ``out``."""

    def __init__(self, comm: NcclCommunicator, what: str, out: _np.ndarray, data: _np.ndarray, start: _Any,
                 finish: _Any, stream: _Any) -> None:
        self.comm, self.what, self.out, self.data, self.start, self.finish = comm, what, out, data, start, finish
        self.stream = stream
        self.request: _Any = None
        self.seq = 0
        self.entry = (out, f"an NCCL {what} in flight")

    def begin(self) -> None:
        self.request = self.start(self.data)

    def test(self) -> bool:
        if self.comm._aborted:
            return True  # ncclCommAbort ended the kernel; the buffer keeps whatever it held
        if self.request is None:
            return False  # still inside groupStart()/groupEnd()
        try:
            return bool(self.request.Test())
        except self.comm._mpi.Exception as exc:
            self.comm._failed = str(exc)
            return True

    def deliver(self) -> None:
        self.drop()
        if not (self.comm._aborted or self.comm._failed):
            self.out[...] = self.finish(self.data)

    def drop(self) -> None:
        if self.entry in _IN_FLIGHT:
            _IN_FLIGHT.remove(self.entry)


class NcclCommunicator:
    """A communicator over all ranks of the MPI job (``ndev`` must be the job's size); creating
    it is collective, and every rank must pass the same ``commId``."""

    def __init__(self, ndev: int, commId: bytes, rank: int, config: _Any = None) -> None:  # noqa: N803
        if not isinstance(commId, bytes):
            raise TypeError(f"Argument 'commId' has incorrect type (expected bytes, got {type(commId).__name__})")
        if len(commId) != 128:
            raise ValueError(f"commId length {len(commId)} != 128.")
        if config is not None:
            raise _not_implemented("cupy.cuda.nccl.NcclCommunicator(config=)")
        from mpi4py import MPI

        world = MPI.COMM_WORLD
        if ndev != world.Get_size():
            raise _not_implemented(f"cupy.cuda.nccl.NcclCommunicator over {ndev} of the job's {world.Get_size()} "
                                   f"MPI ranks")
        if not 0 <= rank < ndev:
            raise _error(_INVALID_ARGUMENT, f"rank {rank} of {ndev}")
        self._MPI, self._mpi = MPI, world.Split(0, rank)  # collective over the job, ordered by NCCL rank
        self._mpi.Set_errhandler(MPI.ERRORS_RETURN)
        ids = self._mpi.allgather(commId)
        if any(i != commId for i in ids):
            raise _error(_INVALID_ARGUMENT, "the ranks passed different unique ids")
        self._rank, self._size = int(rank), int(ndev)
        self._aborted = self._destroyed = False
        self._failed = ""

    # -- facts --
    comm = property(lambda self: 0 if self._closed() else id(self))

    def device_id(self) -> int:
        return 0

    def rank_id(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    def _closed(self) -> bool:
        return self._aborted or self._destroyed

    # -- collectives --
    def allReduce(self, sendbuf: int, recvbuf: int, count: int, datatype: int, op: int,  # noqa: N802
                  stream: int) -> None:
        send = self._buffer(sendbuf, count, datatype, "allReduce sendbuf")
        recv = self._buffer(recvbuf, count, datatype, "allReduce recvbuf")
        MPI = self._MPI  # noqa: N806
        ops = {NCCL_SUM: MPI.SUM, NCCL_PROD: MPI.PROD, NCCL_MAX: MPI.MAX, NCCL_MIN: MPI.MIN, NCCL_AVG: MPI.SUM}
        if op not in ops:
            raise _error(_INVALID_ARGUMENT, f"reduction op {op}")
        wire = "float32" if send.dtype == _np.float16 else send.dtype

        def finish(data: _np.ndarray) -> _np.ndarray:
            return (data / self._size if op == NCCL_AVG else data).astype(recv.dtype)

        self._enqueue("allReduce", stream, recv, _np.array(send, dtype=wire),
                      lambda data: self._mpi.Iallreduce(MPI.IN_PLACE, data, op=ops[op]), finish)

    def bcast(self, buff: int, count: int, datatype: int, root: int, stream: int) -> None:
        buf = self._buffer(buff, count, datatype, "bcast buff")
        self._broadcast("bcast", buf, buf, root, stream)

    def broadcast(self, sendbuff: int, recvbuff: int, count: int, datatype: int, root: int, stream: int) -> None:
        send = self._buffer(sendbuff, count, datatype, "broadcast sendbuff")
        recv = self._buffer(recvbuff, count, datatype, "broadcast recvbuff")
        self._broadcast("broadcast", send, recv, root, stream)

    def _broadcast(self, what: str, send: _np.ndarray, recv: _np.ndarray, root: int, stream: int) -> None:
        if not 0 <= root < self._size:
            raise _error(_INVALID_ARGUMENT, f"{what} root {root} of {self._size}")

        data = send.copy() if self._rank == root else _np.empty_like(recv)
        self._enqueue(what, stream, recv, data, lambda data: self._mpi.Ibcast(data, root=root), lambda data: data)

    def _buffer(self, ptr: int, count: int, datatype: int, what: str) -> _np.ndarray:
        if self._closed():
            gone = "aborted" if self._aborted else "destroyed"
            raise _error(_INVALID_ARGUMENT, f"{what}: the communicator was {gone}")
        if datatype not in _DTYPES:
            raise (_not_implemented("cupy.cuda.nccl NCCL_BFLOAT16") if datatype == NCCL_BFLOAT16 else
                   _error(_INVALID_ARGUMENT, f"{what}: datatype {datatype}"))
        ref = _BY_PTR.get(int(ptr))
        a = ref() if ref is not None else None
        if a is None:
            raise _error(_INVALID_ARGUMENT, f"{what}: {ptr:#x} is not the .data.ptr of a live device array")
        dtype = _np.dtype(_DTYPES[datatype])
        if a.dtype != dtype or not a.flags.c_contiguous or a.size < count:
            layout = "contiguous" if a.flags.c_contiguous else "not contiguous"
            raise _error(_INVALID_ARGUMENT, f"{what}: {count} x {dtype} at {ptr:#x}, but the array there is "
                                            f"{a.size} x {a.dtype} ({layout})")
        return a.reshape(-1)[:count]

    def _enqueue(self, what: str, stream: int, out: _np.ndarray, data: _np.ndarray, start: _Any,
                 finish: _Any) -> None:
        """``data``: the private copy MPI works on (taken now: the stream was ordered after its writer)."""
        target = _STREAMS.get(int(stream))
        if target is None:
            raise _error(_INVALID_ARGUMENT, f"{what}: stream {stream:#x} is not a live cupy.cuda.Stream")
        work = _Collective(self, what, out, data, start, finish, target)
        target._enqueue(work)  # refused unless ordered after the null stream's latest work
        _poison(out)
        _IN_FLIGHT.append(work.entry)
        if _group_depth[0]:
            _group.append(work)
            return
        work.begin()
        if not target.ptr:
            target._complete(work.seq, block=True)

    # -- errors and teardown --
    def check_async_error(self) -> None:
        if self._closed():
            raise _error(_INVALID_ARGUMENT, "the communicator was aborted or destroyed")
        if self._failed:
            raise _error(_REMOTE_ERROR, self._failed)

    def abort(self) -> None:
        """ncclCommAbort: in-flight collectives end (their buffers hold garbage); the communicator is gone."""
        self._aborted = True
        for stream in _STREAMS.values():
            for work in [w for w in stream._work if w.comm is self]:
                work.drop()
                _discard(stream._work, work)

    def destroy(self) -> None:
        self._destroyed = True


def _not_modelled(name: str) -> _Any:
    def method(self: NcclCommunicator, *args: _Any, **kwargs: _Any) -> _Any:
        raise _not_implemented(f"cupy.cuda.nccl.NcclCommunicator.{name}")

    method.__name__ = name
    return method


for _name in ("reduce", "reduceScatter", "allGather", "send", "recv", "commSplit"):
    setattr(NcclCommunicator, _name, _not_modelled(_name))
NcclCommunicator.initAll = staticmethod(lambda devices: (_ for _ in ()).throw(  # type: ignore[attr-defined]
    _not_implemented("cupy.cuda.nccl.NcclCommunicator.initAll")))

_real = set(_MANIFEST["classes"]["cupy.cuda.nccl.NcclCommunicator"])
_extra = {n for n in vars(NcclCommunicator) if not n.startswith("_") and n not in _real}
assert not _extra, f"stand-in NcclCommunicator defines names CuPy's does not: {_extra}"
_install(globals(), "cupy.cuda.nccl", {
    name: globals()[name] for name in (
        "NcclCommunicator", "NcclError", "check_status", "get_build_version", "get_unique_id", "get_version",
        "groupEnd", "groupStart")
})
