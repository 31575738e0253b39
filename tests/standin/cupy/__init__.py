"""A strict CuPy stand-in over NumPy for running gpunet's CuPy path on a CPU (tests only).

Put ``tests/standin`` first on ``sys.path`` (``tests/test_on_standin.py`` does so in a pytest
subprocess) and ``import cupy`` gives this package. See ``cupy._standin`` for what is strict and
what is counted, and ``tests/standin/cupy_manifest.json`` for the names it mirrors.
"""

from __future__ import annotations

from typing import Any as _Any

import numpy as _np

from cupy import _standin
from cupy._module import install as _install
from cupy._raw import RawKernel, RawModule
from cupy._standin import empty, ndarray, ufunc
from cupy._standin import record as _record

_is_standin = True


def asarray(a: _Any, dtype: _Any = None, order: _Any = None, *, blocking: bool = False) -> ndarray:
    """Device arrays pass through (cast if asked); anything else is copied to the device."""
    if type(a) is ndarray:
        if dtype is None or _np.dtype(dtype) == a.dtype:
            return a
        _record("op", "cupy.asarray (astype)")
        return ndarray._from(a._a.astype(dtype))
    return _h2d(a, dtype, order, "cupy.asarray")


def array(obj: _Any, dtype: _Any = None, copy: bool = True, order: str = "K", subok: bool = False,
          ndmin: int = 0, *, blocking: bool = False) -> ndarray:
    if type(obj) is ndarray:
        if not copy and (dtype is None or _np.dtype(dtype) == obj.dtype):
            return obj
        _record("op", "cupy.array (copy)")
        return ndarray._from(_np.array(obj._a, dtype=dtype, order=order, ndmin=ndmin))
    return _h2d(obj, dtype, order, "cupy.array", ndmin)


def _h2d(a: _Any, dtype: _Any, order: _Any, what: str, ndmin: int = 0) -> ndarray:
    if isinstance(a, (list, tuple)) and any(type(x) is ndarray for x in a):
        # a list of device arrays: CuPy stacks them on the device
        _record("op", f"{what} (stack of device arrays)")
        return ndarray._from(_np.array([x._a if type(x) is ndarray else x for x in a], dtype=dtype))
    _record("h2d", what)
    host = _np.array(a, dtype=dtype, order=order or "K", ndmin=ndmin, copy=True)
    return ndarray._from(host)


def asnumpy(a: _Any, stream: _Any = None, order: str = "C", out: _Any = None, *, blocking: bool = True) -> _Any:
    if type(a) is ndarray:
        return a.get(order=order, out=out)
    return _np.asarray(a, order=order)


def empty_like(prototype: _Any, dtype: _Any = None, order: str = "K", subok: _Any = None,
               shape: _Any = None) -> ndarray:
    if type(prototype) is not ndarray:
        raise _standin.unsupported(prototype)
    return empty(prototype.shape if shape is None else shape, prototype.dtype if dtype is None else dtype)


def get_array_module(*args: _Any) -> _Any:
    import sys

    return sys.modules[__name__] if any(type(a) is ndarray for a in args) else _np


def _device_bool(name: str) -> _Any:
    fn = getattr(_np, name)

    def call(*args: _Any, **kwargs: _Any) -> ndarray:
        _record("op", f"cupy.{name}")
        return ndarray._from(_np.asarray(fn(*_standin.dev(args), **_standin.dev(kwargs))))

    call.__name__ = name
    return call


_install(globals(), "cupy", {
    "ndarray": ndarray, "ufunc": ufunc, "empty": empty, "empty_like": empty_like,
    "asarray": asarray, "array": array, "asnumpy": asnumpy, "get_array_module": get_array_module,
    "RawModule": RawModule, "RawKernel": RawKernel,
    **{name: _device_bool(name) for name in ("allclose", "array_equal", "array_equiv")},
}, _np)

from cupy import cuda, lib, linalg, random  # noqa: E402,F401  (real CuPy imports these too)
