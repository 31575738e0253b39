"""The one switch: which array module (NumPy or CuPy) tensors live on.

``gpunet.use("auto" | "numpy" | "cupy")`` sets the backend (see :mod:`gpunet.settings` for
scoping) and also works as a context manager. ``GPUNET_BACKEND`` gives the starting choice.
"""

from __future__ import annotations

import os
import sys
import warnings
from types import ModuleType
from typing import Any

import numpy

from gpunet import settings
from gpunet.settings import BACKENDS

_CUDA_HINT = "install a CUDA build of CuPy: pip install 'gpunet[cuda12]' (or 'gpunet[cuda13]')"


class BackendError(RuntimeError):
    """The requested backend cannot be used (with the reason and the fix)."""


class DeviceMismatchError(TypeError):
    """NumPy and CuPy arrays met in one operation."""


_state: dict[str, Any] = {"gpu": None}  # the cached device probe


def gpu_status() -> tuple[bool, str]:
    """Return ``(usable, reason)`` for the CuPy backend; the probe runs once and is cached.

    Importing CuPy proves nothing: a CUDA device must also be visible to the runtime, and one tiny
    CuPy kernel must compile and run on it.
    """
    if _state["gpu"] is not None:
        return _state["gpu"]
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or a broken CUDA library underneath
        from gpunet.cuda import driver

        if "libcuda" in str(exc):
            result = (False, driver.no_driver(f"cupy failed to import: {type(exc).__name__}: {exc}"))
        else:
            result = (False, f"cupy is not installed or failed to import ({type(exc).__name__}: {exc}); "
                      f"{_CUDA_HINT}")
    else:
        result = _probe_device()
    _state["gpu"] = result
    return result


def _probe_device() -> tuple[bool, str]:
    """Count the devices; on failure say which of no driver / driver too old / no device visible it is."""
    import cupy

    from gpunet.cuda import driver

    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, driver.explain(driver.status_of(exc), f"{type(exc).__name__}: {exc}", driver.facts())
    if count == 0:  # the runtime answered, so a driver is there
        return False, driver.no_device("cudaGetDeviceCount() == 0", os.environ.get("CUDA_VISIBLE_DEVICES"))
    try:  # one tiny elementwise kernel and a reduction, compiled and run: the cupy implementation
        got = float((cupy.arange(4, dtype="float32") * 2).sum())
    except Exception as exc:  # no kernel image for this GPU, NVRTC missing, a launch error
        line = (str(exc).strip().splitlines() or [""])[0][:200]
        return False, f"CuPy sees {count} CUDA device(s) but cannot run a kernel ({type(exc).__name__}: {line})"
    if got != 12.0:
        return False, f"CuPy sees {count} CUDA device(s) but a probe kernel computed {got}, expected 12.0"
    return True, f"CuPy {cupy.__version__} with {count} CUDA device(s)"


def resolve(name: str) -> tuple[str, str]:
    """``(backend, reason)`` for a requested name; BackendError when it cannot be used."""
    return _resolve(name)


def _resolve(name: str) -> tuple[str, str]:
    name = name.strip().lower()
    if name not in BACKENDS:
        raise BackendError(f"gpunet.use: expected one of {BACKENDS}, got {name!r}")
    if name == "numpy":
        return "numpy", "NumPy forced"
    ok, reason = gpu_status()
    if name == "cupy":
        if not ok:
            raise BackendError(f"gpunet.use('cupy'): the CuPy backend is not usable: {reason}. "
                               f"Run on the CPU with gpunet.use('numpy') (or GPUNET_BACKEND=numpy), or on a "
                               f"machine with an NVIDIA GPU {_CUDA_HINT}")
        return "cupy", reason
    if ok:
        return "cupy", f"auto: {reason}"
    return "numpy", f"auto: fell back to NumPy because {reason}"


class _BackendScope:
    """Returned by :func:`use`; restores the previous settings when used with ``with``."""

    def __init__(self, previous: settings.Settings) -> None:
        self._previous = previous

    def __enter__(self) -> ModuleType:
        return xp()

    def __exit__(self, *exc: object) -> None:
        settings.restore(self._previous)


def use(name: str = "auto", *, quiet: bool = False) -> _BackendScope:
    """Select the backend (in the innermost settings scope); ``with gpunet.use("numpy"): ...``
    restores the previous one on exit."""
    chosen, reason = _resolve(name)
    previous = settings.replace(backend=chosen, backend_reason=reason)
    if name.strip().lower() == "auto" and chosen == "numpy" and not quiet:
        _notice(reason)
    return _BackendScope(previous)


_noticed: set[str] = set()


def _notice(reason: str) -> None:
    if reason in _noticed or os.environ.get("GPUNET_QUIET"):
        return
    _noticed.add(reason)
    print(f"gpunet: using NumPy (CPU): {short_reason(reason)}", file=sys.stderr)


def short_reason(reason: str) -> str:
    """The gist of a backend reason, without the exception details."""
    return reason.split("because ", 1)[-1].split(" (", 1)[0]


def env_backend() -> str:
    """``GPUNET_BACKEND`` (``"auto"`` when unset); BackendError naming the variable when invalid."""
    try:
        return settings.env_choice("GPUNET_BACKEND", BACKENDS)
    except ValueError as exc:
        raise BackendError(str(exc)) from None


def current() -> str:
    """Name of the active backend: ``"numpy"`` or ``"cupy"``."""
    name = settings.current().backend
    if name is None:
        settings.warn_about_environment()
        use(env_backend())
        name = settings.current().backend
    return name


def reason() -> str:
    """Why the active backend was chosen."""
    current()
    return settings.current().backend_reason


def xp() -> ModuleType:
    """The array module of the active backend."""
    if current() == "cupy":
        import cupy

        return cupy
    return numpy


def is_cupy_array(array: object) -> bool:
    """True for a ``cupy.ndarray`` (checked without importing CuPy)."""
    return type(array).__module__.startswith("cupy")


def get_array_module(*arrays: object) -> ModuleType:
    """The array module of ``arrays`` (NumPy when none is an array); raises on a mix."""
    ndarray = numpy.ndarray
    if all(type(a) is ndarray for a in arrays):  # the CPU hot path: plain arrays only
        return numpy
    on_gpu = on_cpu = False
    for array in arrays:
        data = getattr(array, "data", array) if hasattr(array, "_is_gpunet_tensor") else array
        if is_cupy_array(data):
            on_gpu = True
        elif isinstance(data, numpy.ndarray):
            on_cpu = True
    if on_gpu and on_cpu:
        raise DeviceMismatchError(
            "NumPy and CuPy arrays met in one operation: move them to one backend first "
            "(tensor.to('cupy') / tensor.to('numpy'), module.to(...))")
    if on_gpu:
        import cupy

        return cupy
    return numpy


def module_for(name: str) -> ModuleType:
    """The array module for a backend name (``"numpy"``/``"cupy"``), checked for usability."""
    if name == "numpy":
        return numpy
    if name == "cupy":
        ok, why = gpu_status()
        if not ok:
            raise BackendError(f"to('cupy'): the CuPy backend is not usable: {why}")
        import cupy

        return cupy
    raise BackendError(f"to: expected 'numpy' or 'cupy', got {name!r}")


def to_backend(array: Any, name: str) -> Any:
    """Copy ``array`` onto backend ``name`` (no copy when it already lives there)."""
    if name == "numpy":
        return to_numpy(array)
    cupy = module_for(name)
    return cupy.asarray(array)


def to_numpy(array: Any) -> numpy.ndarray:
    """A host (NumPy) copy of ``array``."""
    if is_cupy_array(array):
        return array.get()
    return numpy.asarray(array)


def scatter_add(xp_mod: ModuleType, target: Any, index: Any, values: Any) -> None:
    """``target[index] += values`` with repeated indices accumulated, on either backend."""
    if xp_mod is numpy:
        numpy.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)


def warn_once(message: str) -> None:
    """Emit a ``RuntimeWarning`` once per distinct message."""
    if message not in _noticed:
        _noticed.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


settings._backend_resolver[0] = _resolve
