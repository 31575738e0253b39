"""Stand-in ``cupy.cuda``: one plausible device (A100-like numbers), the null stream, events.

Every ``synchronize`` counts as a host sync (``cupy._standin``).
"""

from __future__ import annotations

import time as _time
from typing import Any as _Any

import numpy as _np

from cupy._module import install as _install
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
    """Every stream is the null stream here (``ptr == 0``): work is done when issued."""

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False,
                 priority: _Any = None) -> None:
        self.ptr = 0
        self.device_id = 0

    def synchronize(self) -> None:
        _record("sync", "Stream.synchronize")

    def done(self) -> bool:
        _record("sync", "Stream.done")
        return True

    def use(self) -> Stream:
        return self

    def record(self, event: _Any = None) -> Event:
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event: _Any) -> None:
        pass

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


Stream.null = Stream(null=True)  # type: ignore[attr-defined]


class Event:
    def __init__(self, block: bool = False, disable_timing: bool = False, interprocess: bool = False) -> None:
        self._t: float | None = None
        self.ptr = 0

    def record(self, stream: _Any = None) -> None:
        self._t = _time.perf_counter()

    def synchronize(self) -> None:
        _record("sync", "Event.synchronize")

    done = property(lambda self: True)


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    _record("sync", "cupy.cuda.get_elapsed_time")
    return 1000.0 * ((end_event._t or 0.0) - (start_event._t or 0.0))


class MemoryPointer:
    """``ndarray.data``: the address of the NumPy memory behind a device array."""

    def __init__(self, a: _np.ndarray) -> None:
        self.ptr = a.__array_interface__["data"][0]
        self.mem = None
        self.device_id = 0

    def __int__(self) -> int:
        return self.ptr


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
