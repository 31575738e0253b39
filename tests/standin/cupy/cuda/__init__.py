"""Stand-in ``cupy.cuda``: one plausible device (A100-like numbers), streams and events ordered
enough to check NCCL use (see :class:`Stream`).

Every ``synchronize`` counts as a host sync (``cupy._standin``).
"""

from __future__ import annotations

import contextlib as _contextlib
import time as _time
import weakref as _weakref
from typing import Any as _Any

import numpy as _np

from cupy._module import install as _install
from cupy._standin import CLOCK as _CLOCK
from cupy._standin import StreamOrderError as _StreamOrderError
from cupy._standin import record as _record

#: ``Device().attributes`` (cudaDeviceAttr names without the prefix), an A100-SXM4-40GB.
_ATTRIBUTES: dict[str, int] = {
    "MultiProcessorCount": 108, "MaxThreadsPerBlock": 1024, "MaxBlockDimX": 1024,
    "MaxBlockDimY": 1024, "MaxBlockDimZ": 64, "MaxGridDimX": 2**31 - 1, "MaxGridDimY": 65535,
    "MaxGridDimZ": 65535, "MaxSharedMemoryPerBlock": 49152, "MaxSharedMemoryPerBlockOptin": 166912,
    "MaxSharedMemoryPerMultiprocessor": 167936, "MaxRegistersPerBlock": 65536,
    "MaxRegistersPerMultiprocessor": 65536, "WarpSize": 32, "ClockRate": 1410000,
    "MemoryClockRate": 1215000, "GlobalMemoryBusWidth": 5120, "L2CacheSize": 41943040,
    "MaxThreadsPerMultiProcessor": 2048, "ComputeCapabilityMajor": 8, "ComputeCapabilityMinor": 0,
    "ConcurrentKernels": 1, "EccEnabled": 1, "TotalConstantMemory": 65536, "UnifiedAddressing": 1,
    "AsyncEngineCount": 3, "PciBusId": 0, "PciDeviceId": 0, "Integrated": 0,
}
_TOTAL_MEMORY = 40 * 2**30
_NAME = b"NVIDIA A100-SXM4-40GB (gpunet CuPy stand-in on NumPy)"


class Device:
    def __init__(self, device: _Any = None) -> None:
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            from cupy.cuda.runtime import CUDARuntimeError

            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    attributes = property(lambda self: dict(_ATTRIBUTES))
    compute_capability = property(lambda self: "80")
    mem_info = property(lambda self: (_TOTAL_MEMORY - 2**30, _TOTAL_MEMORY))
    pci_bus_id = property(lambda self: "0000:00:00.0")

    def synchronize(self) -> None:
        _record("sync", "Device.synchronize")
        for stream in list(_STREAMS.values()):
            stream._complete(stream._issued, block=True)

    def use(self) -> None:
        pass

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __int__(self) -> int:
        return self.id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class Stream:
    """The null stream (``ptr == 0``) runs every operation when it is issued. Other streams carry
    only NCCL collectives (``cupy.cuda.nccl``): a queue of work that completes when its MPI
    request does, plus the null-stream position each stream waited for (``wait_event``), so a
    collective can check it is ordered after the work that produced its buffer. The current
    stream is always the null stream.

    A side stream's work reaches its buffer only through an explicit wait (the null stream's
    ``wait_event``, ``Event.synchronize``, ``Stream.synchronize``, ``Device.synchronize``);
    a query that says done is not enough here, so a missing wait is always caught."""

    _next_ptr = [0x5000]

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False,
                 priority: _Any = None) -> None:
        if null:
            self.ptr = 0
        else:
            Stream._next_ptr[0] += 0x100
            self.ptr = Stream._next_ptr[0]
        self.device_id = 0
        self._issued = 0  # work items ever enqueued
        self._work: list[_Any] = []  # enqueued, not yet delivered, in order
        self._after = 0  # the null-stream position (CLOCK) this stream waited for
        _STREAMS[self.ptr] = self

    def _enqueue(self, work: _Any) -> None:
        """Put a collective on this stream (it must come after the null stream's latest work)."""
        if self.ptr and self._after < _CLOCK[0]:
            raise _StreamOrderError(
                f"{work.what} on stream {self.ptr:#x}: the stream has not waited for the null stream's "
                f"latest work ({_CLOCK[0] - self._after} device op(s) since the last event it waited for), so "
                f"it may read its buffer before that is written; record an Event on the current stream and "
                f"call stream.wait_event(event) first")
        self._issued += 1
        work.seq = self._issued
        self._work.append(work)
        _ORDER.append({"op": work.what, "stream": self.ptr, "seq": work.seq, "after": self._after,
                       "clock": _CLOCK[0]})

    def _complete(self, upto: int, block: bool) -> bool:
        """Whether the work up to ``upto`` is finished; ``block``: wait for it (bounded) and
        deliver it to its buffers."""
        todo = [w for w in self._work if w.seq <= upto]
        deadline = _time.monotonic() + _HANG_LIMIT_S
        for w in todo:
            while not w.test():
                if not block:
                    return False
                if _time.monotonic() > deadline:
                    raise _StreamOrderError(f"{w.what} on stream {self.ptr:#x} did not complete within "
                                            f"{_HANG_LIMIT_S:g} s (a real device would hang here)")
                _time.sleep(1e-3)
        if block:
            for w in todo:
                w.deliver()
                _discard(self._work, w)  # an abort on the watchdog thread may have dropped it already
        return True

    def synchronize(self) -> None:
        _record("sync", "Stream.synchronize")
        self._complete(self._issued, block=True)

    def done(self) -> bool:
        _record("sync", "Stream.done")
        return self._complete(self._issued, block=False)

    def use(self) -> Stream:
        return self

    def record(self, event: _Any = None) -> Event:
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event: _Any) -> None:
        source = event._stream
        if source is None or source is self:
            return
        _ORDER.append({"op": "wait_event", "stream": self.ptr, "on": source.ptr, "upto": event._pos,
                       "clock": _CLOCK[0]})
        if source.ptr == 0:
            self._after = max(self._after, event._pos)
        elif self.ptr == 0:  # the null stream runs now: what it waits for must be finished and in place
            source._complete(event._pos, block=True)
        else:
            from cupy._standin import not_implemented

            raise not_implemented("cupy.cuda.Stream.wait_event between two non-null streams")

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


_STREAMS: dict[int, Stream] = {}
#: What ran after what: collectives (``after``: the null-stream position their stream waited for,
#: ``clock``: the position when issued) and ``wait_event`` calls, in issue order.
_ORDER: list[dict[str, _Any]] = []
_HANG_LIMIT_S = 600.0
Stream.null = Stream(null=True)  # type: ignore[attr-defined]


class Event:
    """Remembers the stream and position it was recorded at; ``done`` asks the stream."""

    def __init__(self, block: bool = False, disable_timing: bool = False, interprocess: bool = False) -> None:
        self._t: float | None = None
        self.ptr = 0
        self._stream: Stream | None = None
        self._pos = 0

    def record(self, stream: _Any = None) -> None:
        stream = stream if stream is not None else get_current_stream()
        self._t = _time.perf_counter()
        self._stream = stream
        self._pos = _CLOCK[0] if stream.ptr == 0 else stream._issued

    def synchronize(self) -> None:
        _record("sync", "Event.synchronize")
        if self._stream is not None:
            self._stream._complete(self._pos, block=True)

    done = property(lambda self: self._stream is None or self._stream._complete(self._pos, block=False))


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    _record("sync", "cupy.cuda.get_elapsed_time")
    return 1000.0 * ((end_event._t or 0.0) - (start_event._t or 0.0))


class MemoryPointer:
    """``ndarray.data``: the address of the NumPy memory behind a device array."""

    def __init__(self, a: _np.ndarray) -> None:
        self.ptr = a.__array_interface__["data"][0]
        self.mem = None
        self.device_id = 0
        _BY_PTR[self.ptr] = _weakref.ref(a)  # cupy.cuda.nccl finds buffers by address

    def __int__(self) -> int:
        return self.ptr


_BY_PTR: dict[int, _Any] = {}


def get_current_stream(device_id: _Any = None) -> Stream:
    return Stream.null  # type: ignore[attr-defined]


def get_device_id() -> int:
    return 0


def is_available() -> bool:
    return True


def get_local_runtime_version() -> int:
    return 12080


_install(globals(), "cupy.cuda", {
    "Device": Device, "Stream": Stream, "Event": Event, "MemoryPointer": MemoryPointer,
    "get_current_stream": get_current_stream, "get_device_id": get_device_id,
    "get_elapsed_time": get_elapsed_time, "is_available": is_available,
    "get_local_runtime_version": get_local_runtime_version,
})

from cupy.cuda import runtime  # noqa: E402,F401


def _discard(work: list, item: _Any) -> None:
    """Remove ``item`` from a stream's work list if it is still there (abort and completion race)."""
    with _contextlib.suppress(ValueError):
        work.remove(item)
