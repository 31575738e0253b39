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
