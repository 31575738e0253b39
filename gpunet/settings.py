"""The one settings object: backend, kernels, default dtype, grad mode, fast paths and threads.

``current()`` returns an immutable :class:`Settings`. ``using(...)`` scopes changes to the
current thread / asyncio task (a ``ContextVar``) and restores them on exit::

    with gpunet.using(backend="numpy", dtype="float64", grad=False):
        ...

Outside any ``using`` block the process-wide defaults apply; the plain setters
(``gpunet.use``, ``gpunet.config.set_kernels``, ``gpunet.set_default_dtype``) change the value
of the innermost scope, which is the process-wide default when no scope is open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy

from gpunet import parallel

KERNEL_CHOICES = ("auto", "raw", "numba", "cupy")
BACKENDS = ("auto", "numpy", "cupy")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every library-wide choice in one immutable value.

    ``backend`` is ``None`` until first resolved (from ``GPUNET_BACKEND``, default ``auto``);
    ``backend_reason`` says why it was chosen. ``kernels`` picks the CuPy implementation of
    the hot ops; ``fast_paths`` lets NumPy arrays take the compiled CPU implementations
    (``False``: the NumPy references, as the GPU reference path runs them). ``threads`` is the
    thread count of BLAS and of the numba kernels together (:mod:`gpunet.parallel`; default:
    the cores this process may use). BLAS's count is process-wide: entering or leaving a
    scope that changes it applies the new value at once.
    """

    backend: str | None = None
    backend_reason: str = ""
    kernels: str = "auto"
    dtype: numpy.dtype = numpy.dtype("float32")
    grad: bool = True
    fast_paths: bool = True
    threads: int = 1


def env_choice(name: str, choices: tuple[str, ...], default: str = "auto") -> str:
    """The value of environment variable ``name`` (``default`` when unset or empty), checked.

    Raises ValueError naming the variable, its value and the choices.
    """
    raw = os.environ.get(name, "")
    value = raw.strip().lower() or default
    if value not in choices:
        raise ValueError(f"{name}={raw!r} is not one of {', '.join(choices)} (set one of them, or unset {name})")
    return value


_env_problems: list[str] = []  # said once, on first use of the backend (importing never fails)


def _initial() -> Settings:
    try:
        kernels = env_choice("GPUNET_KERNELS", KERNEL_CHOICES)
    except ValueError as exc:  # the CLI refuses the value; the library warns at first use
        _env_problems.append(f"{exc}; using 'auto'")
        kernels = "auto"
    return Settings(kernels=kernels, threads=parallel.available_cores())


def warn_about_environment() -> None:
    """Warn (once) about invalid ``GPUNET_*`` values found at import."""
    import warnings

    while _env_problems:
        warnings.warn(_env_problems.pop(), RuntimeWarning, stacklevel=3)


_global = [_initial()]
#: ``name -> (backend, reason)``; installed by ``gpunet.backend`` (which imports this module).
_backend_resolver: list[Any] = [lambda name: (name, "")]
_scoped: ContextVar[Settings | None] = ContextVar("gpunet_settings", default=None)


def current() -> Settings:
    """The settings in force here (the innermost ``using`` scope, else the defaults)."""
    scoped = _scoped.get()
    return _global[0] if scoped is None else scoped


def check(**changes: Any) -> dict[str, Any]:
    """Validate and normalise setting values (ValueError naming the setting otherwise)."""
    known = {f.name for f in dataclasses.fields(Settings)}
    out = {}
    for name, value in changes.items():
        if name not in known:
            raise ValueError(f"gpunet.using: unknown setting {name!r}; expected one of {sorted(known)}")
        if name == "kernels" and value not in KERNEL_CHOICES:
            raise ValueError(f"gpunet.using: expected kernels in {KERNEL_CHOICES}, got {value!r}")
        if name == "dtype":
            value = numpy.dtype(value)
            if value.kind != "f":
                raise ValueError(f"gpunet.using: expected a floating dtype, got {value}")
        if name in ("grad", "fast_paths"):
            value = bool(value)
        if name == "threads":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"gpunet.using: expected threads as an int >= 1, got {value!r}")
            value = int(value)
        out[name] = value
    return out


def replace(**changes: Any) -> Settings:
    """Change settings in the innermost scope (process-wide when none is open); returns the old value."""
    previous = current()
    new = dataclasses.replace(previous, **check(**changes))
    if _scoped.get() is None:
        _global[0] = new
    else:
        _scoped.set(new)
    _threads_changed(previous, new)
    return previous


def restore(value: Settings) -> None:
    """Put back a value returned by :func:`replace` (in the same scope)."""
    previous = current()
    if _scoped.get() is None:
        _global[0] = value
    else:
        _scoped.set(value)
    _threads_changed(previous, value)


def _threads_changed(old: Settings, new: Settings) -> None:
    if old.threads != new.threads:
        parallel.apply(new.threads)


@contextlib.contextmanager
def using(**changes: Any) -> Iterator[Settings]:
    """Scope setting changes to this thread / task: ``backend``, ``kernels``, ``dtype``,
    ``grad``, ``fast_paths``, ``threads``. ``backend`` is resolved (and checked) on entry."""
    if "backend" in changes:
        name, reason = _backend_resolver[0](changes.pop("backend"))
        changes["backend"], changes["backend_reason"] = name, reason
    outer = current()
    token = _scoped.set(dataclasses.replace(outer, **check(**changes)))
    _threads_changed(outer, current())
    try:
        yield current()
    finally:
        inner = current()
        _scoped.reset(token)
        _threads_changed(inner, current())


def set_num_threads(threads: int) -> None:
    """Use ``threads`` threads for BLAS and the numba kernels (the ``threads`` setting, applied at once)."""
    replace(threads=threads)


def get_num_threads() -> int:
    """The ``threads`` setting in force here."""
    return current().threads


def apply_threads() -> None:
    """Apply the ``threads`` setting in force here (the numba kernel modules call this when first
    imported; every later change of the setting applies itself)."""
    parallel.apply(current().threads)
