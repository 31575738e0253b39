"""Stand-in ``cupyx``: ``scatter_add/max/min`` (indices wrap like CuPy's), ``allow_synchronize``
(a sync inside ``allow_synchronize(False)`` raises ``DeviceSynchronized``), pinned host memory."""

from __future__ import annotations

from typing import Any as _Any

import numpy as _np
from cupy import _standin
from cupy._module import install as _install
from cupy._standin import DeviceSynchronized, allow_synchronize


def _scatter(name: str, np_ufunc: _Any) -> _Any:
    def scatter(a: _Any, slices: _Any, value: _Any) -> None:
        if type(a) is not _standin.ndarray:
            raise _standin.unsupported(a)
        index, _ = _standin._index(slices, a.shape, f"cupyx.{name}")
        _standin.record("op", f"cupyx.{name}")
        np_ufunc.at(a._a, index, _standin.dev(value))

    scatter.__name__ = name
    return scatter


def _pinned(np_fn: _Any) -> _Any:
    def pinned(*args: _Any, **kwargs: _Any) -> _np.ndarray:
        return np_fn(*args, **kwargs)  # pinned host memory is host memory: NumPy arrays

    return pinned


_install(globals(), "cupyx", {
    "scatter_add": _scatter("scatter_add", _np.add), "scatter_max": _scatter("scatter_max", _np.maximum),
    "scatter_min": _scatter("scatter_min", _np.minimum), "allow_synchronize": allow_synchronize,
    "DeviceSynchronized": DeviceSynchronized, "errstate": _np.errstate, "seterr": _np.seterr,
    "geterr": _np.geterr, "empty_pinned": _pinned(_np.empty), "zeros_pinned": _pinned(_np.zeros),
    "empty_like_pinned": _pinned(_np.empty_like), "zeros_like_pinned": _pinned(_np.zeros_like),
})
