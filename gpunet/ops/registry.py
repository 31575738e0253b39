"""The one rule that decides which implementation runs an op.

Every implementation of an op is registered here under the op's name with the device its
arrays live on, by *module path*: nothing in the op layer imports a GPU launcher; the registry
imports one the first time it is chosen.

Implementation names:

- ``numpy-ref``: the reference (the spec) on NumPy arrays;
- ``numpy-fast``: a compiled CPU fast path (numba ``njit``), equal to the reference;
- ``cupy``: the same reference code on CuPy arrays (the GPU reference);
- ``raw``: CUDA C (``kernels/*.cu``) through ``cupy.RawModule``;
- ``numba``: numba.cuda kernels.

The rule (:func:`lookup`): NumPy arrays get ``numpy-fast`` when ``settings.fast_paths`` is on
and one is registered and usable, else ``numpy-ref``. CuPy arrays get the implementation named
by ``settings.kernels``; an explicit choice that cannot run is a :class:`KernelUnavailableError`
saying why; an op with no implementation of that name (pooling has no ``raw`` kernel) runs the
``cupy`` reference. ``auto`` tries ``raw``, then ``numba``, then ``cupy``, printing once why it
passed over each one (``GPUNET_QUIET=1`` silences it).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from typing import Any

from gpunet import settings

DEVICES = ("numpy", "cupy")
GPU_AUTO_ORDER = ("raw", "numba", "cupy")
#: Modules whose ``reset_probe()`` :func:`clear_probes` calls (their probes compile and launch).
PROBED_MODULES = ("gpunet.cuda.raw_ops", "gpunet.cuda.numba_ops")


class KernelUnavailableError(RuntimeError):
    """The implementation asked for cannot run on this machine (the message says why)."""


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclasses.dataclass
class Implementation:
    """One implementation of one op.

    ``target`` is ``"package.module:attribute"``: the implementation itself, or, with
    ``table=True``, a function ``f(op) -> implementation`` (a launcher table). ``probe`` names
    a function returning ``None`` when the implementation can run here, else the reason.
    """

    op: str
    name: str
    device: str
    target: str
    probe: str | None = None
    table: bool = False
    _loaded: Any = dataclasses.field(default=None, repr=False)
    _reason: Any = dataclasses.field(default=False, repr=False)

    def unavailable_reason(self) -> str | None:
        """``None`` when usable here, else why not (probed once; a failing probe is a reason)."""
        if self._reason is False:
            try:
                self._reason = _resolve(self.probe)() if self.probe else None
            except Exception as exc:  # a broken optional dependency must not break lookup
                self._reason = f"{type(exc).__name__}: {exc}"
        return self._reason

    def load(self) -> Any:
        """The implementation object (imported on first use)."""
        if self._loaded is None:
            found = _resolve(self.target)
            self._loaded = found(self.op) if self.table else found
        return self._loaded


_registry: dict[str, dict[str, Implementation]] = {}
_cache: dict[tuple[str, str, str, bool], Implementation] = {}
_noticed: set[str] = set()


def register(op: str, name: str, target: str, *, device: str, probe: str | None = None,
             table: bool = False) -> Implementation:
    """Register implementation ``name`` of ``op`` for arrays on ``device``."""
    if device not in DEVICES:
        raise ValueError(f"registry.register: expected device in {DEVICES}, got {device!r}")
    impl = Implementation(op, name, device, target, probe, table)
    _registry.setdefault(op, {})[name] = impl
    _cache.clear()
    return impl


def ops() -> list[str]:
    """Names of every registered op."""
    return sorted(_registry)


def implementations(op: str, device: str | None = None) -> list[Implementation]:
    """Every registered implementation of ``op`` (optionally only those for ``device``)."""
    return [impl for impl in _table(op).values() if device is None or impl.device == device]


def get(op: str, name: str) -> Implementation:
    """Implementation ``name`` of ``op`` (KeyError listing the registered ones otherwise)."""
    table = _table(op)
    if name not in table:
        raise KeyError(f"registry: op {op!r} has no implementation {name!r}; registered: {sorted(table)}")
    return table[name]


def _table(op: str) -> dict[str, Implementation]:
    if op not in _registry:
        raise KeyError(f"registry: unknown op {op!r}; registered ops: {ops()}")
    return _registry[op]


def resolve(op: str, device: str) -> Implementation:
    """The implementation :func:`lookup` picks for ``op`` on ``device`` under the current settings."""
    now = settings.current()
    key = (op, device, now.kernels, now.fast_paths)
    found = _cache.get(key)
    if found is None:
        found = _cache[key] = _choose(op, device, now.kernels, now.fast_paths)
    return found


def lookup(op: str, device: str) -> Any:
    """The implementation object to run ``op`` on arrays of ``device`` (``"numpy"``/``"cupy"``)."""
    return resolve(op, device).load()


def device_of(array: Any) -> str:
    """``"cupy"`` for a CuPy array, else ``"numpy"`` (without importing CuPy)."""
    return "cupy" if type(array).__module__.startswith("cupy") else "numpy"


def _choose(op: str, device: str, kernels: str, fast_paths: bool) -> Implementation:
    table = _table(op)
    if device == "numpy":
        fast = table.get("numpy-fast")
        if fast_paths and fast is not None and fast.unavailable_reason() is None:
            return fast
        return get(op, "numpy-ref")
    if device != "cupy":
        raise ValueError(f"registry.lookup: expected device in {DEVICES}, got {device!r}")
    if kernels != "auto" and kernels in table:
        impl = table[kernels]
        why = impl.unavailable_reason()
        if why is not None:
            raise KernelUnavailableError(f"kernels={kernels!r}: the {kernels} implementation of {op} cannot "
                                         f"run here: {why} (see `gpunet info`)")
        return impl
    if kernels != "auto":
        return get(op, "cupy")  # no such kernel for this op: the GPU reference
    for name in GPU_AUTO_ORDER:
        impl = table.get(name)
        if impl is None:
            continue
        why = impl.unavailable_reason()
        if why is None:
            return impl
        _notice(f"kernels=auto: not using the {name} kernels: {why}")
    raise KernelUnavailableError(f"{op}: no implementation can run on CuPy arrays here")


def _notice(message: str) -> None:
    if message in _noticed or os.environ.get("GPUNET_QUIET"):
        return
    _noticed.add(message)
    print(f"gpunet: {message}", file=sys.stderr)


def usable(name: str, device: str = "cupy") -> dict[str, str | None]:
    """``{op: None or reason}`` for implementation ``name`` of every op that has one (for ``gpunet info``)."""
    return {op: impl.unavailable_reason() for op, table in sorted(_registry.items())
            for impl in table.values() if impl.name == name and impl.device == device}


def clear_probes() -> None:
    """Forget probe results and loaded objects (after the environment changed, in tests)."""
    for table in _registry.values():
        for impl in table.values():
            impl._reason, impl._loaded = False, None
    _cache.clear()
    for module in PROBED_MODULES:  # the kernel probes (compile and launch), if ever loaded
        loaded = sys.modules.get(module)
        if loaded is not None:
            loaded.reset_probe()


