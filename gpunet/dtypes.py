"""The default floating dtype for new parameters and data (float32 unless changed)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy

_default = [numpy.dtype("float32")]


def default_dtype() -> numpy.dtype:
    return _default[0]


def set_default_dtype(dtype: Any) -> None:
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default[0] = dtype


@contextlib.contextmanager
def default_dtype_scope(dtype: Any) -> Iterator[None]:
    """Temporarily change the default dtype (e.g. float64 for gradient checks)."""
    previous = _default[0]
    set_default_dtype(dtype)
    try:
        yield
    finally:
        _default[0] = previous
