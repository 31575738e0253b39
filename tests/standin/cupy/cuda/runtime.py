"""Stand-in ``cupy.cuda.runtime``: one device, CUDA 12.8, the real constants."""

from __future__ import annotations

from typing import Any as _Any

from cupy._module import install as _install
from cupy._standin import record as _record
from cupy.cuda import _ATTRIBUTES, _NAME, _TOTAL_MEMORY


class CUDARuntimeError(RuntimeError):
    def __init__(self, status: _Any) -> None:
        self.status = status
        super().__init__(str(status))


def getDeviceCount() -> int:  # noqa: N802 - CuPy's name
    return 1


def getDevice() -> int:  # noqa: N802
    return 0


def setDevice(device: int) -> None:  # noqa: N802
    if int(device) != 0:
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")


def runtimeGetVersion() -> int:  # noqa: N802
    return 12080


def driverGetVersion() -> int:  # noqa: N802
    return 12080


def deviceSynchronize() -> None:  # noqa: N802
    _record("sync", "runtime.deviceSynchronize")


def streamSynchronize(stream: _Any) -> None:  # noqa: N802
    _record("sync", "runtime.streamSynchronize")


def memGetInfo() -> tuple[int, int]:  # noqa: N802
    return _TOTAL_MEMORY - 2**30, _TOTAL_MEMORY


def deviceGetAttribute(attrib: int, device: int) -> int:  # noqa: N802
    setDevice(device)
    from cupy._standin import MANIFEST

    names = {v: k for k, v in MANIFEST["constants"]["cupy.cuda.runtime"].items() if k.startswith("cudaDevAttr")}
    name = names.get(attrib, "")[len("cudaDevAttr"):]
    if name not in _ATTRIBUTES:
        from cupy._standin import not_implemented

        raise not_implemented(f"cupy.cuda.runtime.deviceGetAttribute({names.get(attrib, attrib)})")
    return _ATTRIBUTES[name]


def getDeviceProperties(device: int) -> dict[str, _Any]:  # noqa: N802
    setDevice(device)
    a = _ATTRIBUTES
    return {"name": _NAME, "totalGlobalMem": _TOTAL_MEMORY, "major": 8, "minor": 0,
            "multiProcessorCount": a["MultiProcessorCount"], "maxThreadsPerBlock": a["MaxThreadsPerBlock"],
            "sharedMemPerBlock": a["MaxSharedMemoryPerBlock"], "regsPerBlock": a["MaxRegistersPerBlock"],
            "warpSize": a["WarpSize"], "clockRate": a["ClockRate"], "l2CacheSize": a["L2CacheSize"],
            "maxThreadsDim": (1024, 1024, 64), "maxGridSize": (2**31 - 1, 65535, 65535),
            "pciBusID": 0, "pciDeviceID": 0, "pciDomainID": 0, "integrated": 0,
            "totalConstMem": a["TotalConstantMemory"], "ECCEnabled": 1, "uuid": b"\0" * 16}


_install(globals(), "cupy.cuda.runtime", {
    name: globals()[name] for name in (
        "CUDARuntimeError", "getDeviceCount", "getDevice", "setDevice", "runtimeGetVersion",
        "driverGetVersion", "deviceSynchronize", "streamSynchronize", "memGetInfo",
        "deviceGetAttribute", "getDeviceProperties")
})
