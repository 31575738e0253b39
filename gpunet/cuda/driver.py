"""Why CuPy imports but no GPU can be used: no NVIDIA driver, a driver too old, or no device visible.

The CUDA runtime reports a missing driver with the same code as an old one
(``cudaErrorInsufficientDriver``), so :func:`explain` also looks at whether ``libcuda`` loads and
at the driver's version (0 when none is installed). It reads facts only; :func:`facts` gathers
them for this process. Imports nothing from gpunet, so :mod:`gpunet.backend` can use it.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from dataclasses import dataclass

# cudaError_t values (CUDA runtime API; the same numbers in CUDA 11, 12 and 13).
INITIALIZATION_ERROR = 3
STUB_LIBRARY = 34
INSUFFICIENT_DRIVER = 35
DEVICES_UNAVAILABLE = 46
NO_DEVICE = 100
SYSTEM_DRIVER_MISMATCH = 803

_NAMES = {"cudaErrorInitializationError": INITIALIZATION_ERROR, "cudaErrorStubLibrary": STUB_LIBRARY,
          "cudaErrorInsufficientDriver": INSUFFICIENT_DRIVER, "cudaErrorDevicesUnavailable": DEVICES_UNAVAILABLE,
          "cudaErrorNoDevice": NO_DEVICE, "cudaErrorSystemDriverMismatch": SYSTEM_DRIVER_MISMATCH}

LIBCUDA = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
_INSTALL = "install the NVIDIA driver (https://www.nvidia.com/drivers) to use the GPU"


@dataclass(frozen=True)
class Facts:
    """What the process can see of the driver: whether ``libcuda`` loads (``None``) or why not, the
    driver's and the runtime's CUDA versions (``12080`` is 12.8; a driver version 0 means none), and
    ``CUDA_VISIBLE_DEVICES`` (``None`` when unset)."""

    libcuda_error: str | None
    driver_version: int
    runtime_version: int
    visible_devices: str | None


def status_of(exc: BaseException) -> int | None:
    """The ``cudaError_t`` of a CuPy ``CUDARuntimeError`` (its ``status``, or the name in its text)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    match = re.search(r"cudaError\w+", str(exc))
    return _NAMES.get(match.group()) if match else None


def _version(number: int) -> str:
    return f"{number // 1000}.{number % 1000 // 10}"


def _load_libcuda() -> str | None:
    try:
        ctypes.CDLL(LIBCUDA)
    except OSError as exc:
        return str(exc) or f"{LIBCUDA} not found"
    return None


def facts() -> Facts:
    """The :class:`Facts` of this process (loads ``libcuda`` if it can; asks CuPy for the versions)."""
    import cupy

    def ask(name: str) -> int:
        try:
            return int(getattr(cupy.cuda.runtime, name)())
        except Exception:  # a runtime that cannot even answer this counts as "unknown" (0)
            return 0

    return Facts(_load_libcuda(), ask("driverGetVersion"), ask("runtimeGetVersion"),
                 os.environ.get("CUDA_VISIBLE_DEVICES"))


def no_driver(detail: str) -> str:
    return f"no NVIDIA driver is installed ({detail}); {_INSTALL}"


def no_device(detail: str, visible_devices: str | None) -> str:
    if visible_devices is not None:
        return (f"no CUDA device is visible with CUDA_VISIBLE_DEVICES={visible_devices!r} ({detail}); "
                "unset it or name a device that exists (nvidia-smi -L lists them)")
    return f"no CUDA device is visible (the driver finds none: {detail}); check the GPU with nvidia-smi"


def explain(status: int | None, text: str, f: Facts) -> str:
    """One sentence for the fallback notice: its gist comes before the first ``" ("``
    (:func:`gpunet.backend.short_reason`), details and the fix after."""
    if f.libcuda_error is not None or "libcuda" in text:
        return no_driver(f"{LIBCUDA} cannot be loaded: {f.libcuda_error or text}")
    if status == STUB_LIBRARY:
        return no_driver(f"only the CUDA stub library is present: {text}")
    if status == INSUFFICIENT_DRIVER:
        if f.driver_version <= 0:
            return no_driver(f"the CUDA runtime finds no driver: {text}")
        return (f"the NVIDIA driver is too old for this CuPy build (the driver supports CUDA "
                f"{_version(f.driver_version)}, CuPy's runtime is CUDA {_version(f.runtime_version)}: {text}); "
                f"update the driver or install a CuPy for CUDA {_version(f.driver_version)}")
    if status == NO_DEVICE:
        return no_device(text, f.visible_devices)
    if status == SYSTEM_DRIVER_MISMATCH:
        return (f"the NVIDIA kernel module and driver library versions differ ({text}); reboot after the "
                "driver update, or reinstall the driver")
    if status == DEVICES_UNAVAILABLE:
        return f"every CUDA device is busy or unavailable ({text}); check nvidia-smi for exclusive-process mode"
    return f"no CUDA device is usable ({text})"
