"""Seeded weight initialisations (drawn on the host, then placed on the active backend).

- ``xavier_uniform`` / ``xavier_normal`` (Glorot & Bengio 2010): variance ``2 / (fan_in + fan_out)``,
  for tanh/sigmoid layers.
- ``kaiming_uniform`` / ``kaiming_normal`` (He et al. 2015): variance ``2 / fan_in``, for ReLU.
- ``lecun_uniform``: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, PyTorch's default for Linear/Conv.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gpunet import backend
from gpunet.dtypes import default_dtype
from gpunet.random import generator

Shape = tuple[int, ...]


def fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight ``(out, in, *kernel)``."""
    if len(shape) < 2:
        raise ValueError(f"init: expected a weight with at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _place(host: numpy.ndarray, dtype: Any) -> Any:
    return backend.xp().asarray(host.astype(dtype or default_dtype()))


def uniform(shape: Shape, bound: float, dtype: Any = None, rng: numpy.random.Generator | None = None) -> Any:
    return _place((rng or generator()).uniform(-bound, bound, size=shape), dtype)


def normal(shape: Shape, std: float, dtype: Any = None, rng: numpy.random.Generator | None = None) -> Any:
    return _place((rng or generator()).normal(0.0, std, size=shape), dtype)


def zeros(shape: Shape, dtype: Any = None) -> Any:
    return _place(numpy.zeros(shape), dtype)


def xavier_uniform(shape: Shape, gain: float = 1.0, dtype: Any = None) -> Any:
    fan_in, fan_out = fans(shape)
    return uniform(shape, gain * math.sqrt(6.0 / (fan_in + fan_out)), dtype)


def xavier_normal(shape: Shape, gain: float = 1.0, dtype: Any = None) -> Any:
    fan_in, fan_out = fans(shape)
    return normal(shape, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def kaiming_uniform(shape: Shape, dtype: Any = None) -> Any:
    return uniform(shape, math.sqrt(6.0 / fans(shape)[0]), dtype)


def kaiming_normal(shape: Shape, dtype: Any = None) -> Any:
    return normal(shape, math.sqrt(2.0 / fans(shape)[0]), dtype)


def lecun_uniform(shape: Shape, dtype: Any = None) -> Any:
    return uniform(shape, 1.0 / math.sqrt(fans(shape)[0]), dtype)


INITIALIZERS = {
    "xavier": xavier_uniform, "xavier_uniform": xavier_uniform, "xavier_normal": xavier_normal,
    "he": kaiming_uniform, "kaiming_uniform": kaiming_uniform, "kaiming_normal": kaiming_normal,
    "default": lecun_uniform, "lecun_uniform": lecun_uniform,
}


def initialize(name: str, shape: Shape, dtype: Any = None) -> Any:
    """Draw a weight of ``shape`` with the initialisation called ``name``."""
    try:
        init = INITIALIZERS[name]
    except KeyError:
        raise ValueError(f"init: expected one of {sorted(INITIALIZERS)}, got {name!r}") from None
    return init(shape, dtype=dtype)
