"""The default floating dtype for new parameters and data (a view of :mod:`gpunet.settings`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy

from gpunet import settings


def default_dtype() -> numpy.dtype:
    return settings.current().dtype


def set_default_dtype(dtype: Any) -> None:
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    settings.replace(dtype=dtype)


@contextlib.contextmanager
def default_dtype_scope(dtype: Any) -> Iterator[None]:
    """Temporarily change the default dtype (e.g. float64 for gradient checks)."""
    with settings.using(dtype=dtype):
        yield


# PyTorch's dtype names (``gpunet.float32`` ... ``gpunet.bool``): NumPy dtypes, so that
# ``t.dtype == gpunet.float32`` and ``tensor(x, dtype=gpunet.int64)`` work. ``gpunet/__init__.py``
# also exports ``bool_``/``float_``/``int_`` as ``gpunet.bool``/``gpunet.float``/``gpunet.int``
# (named with a trailing underscore here so that this module keeps the builtins).
float16 = half = numpy.dtype("float16")
float32 = float_ = numpy.dtype("float32")
float64 = double = numpy.dtype("float64")
int8 = numpy.dtype("int8")
int16 = short = numpy.dtype("int16")
int32 = int_ = numpy.dtype("int32")
int64 = long = numpy.dtype("int64")
uint8 = numpy.dtype("uint8")
bool_ = numpy.dtype("bool")
