"""Shared hypothesis strategies and helpers for the property tests (small float64 arrays)."""

from __future__ import annotations

from typing import Any

import numpy
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gpunet.autograd import Tensor

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(SETTINGS, max_examples=15)

MAX_SIDE = 4
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=MAX_SIDE)
nonempty_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=MAX_SIDE)
finite = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, width=64)


def arrays(shape: Any, elements: st.SearchStrategy[float] = finite, unique: bool = False) -> st.SearchStrategy:
    return hnp.arrays(numpy.float64, shape, elements=elements, unique=unique)


def away_from_zero(low: float = 0.2, high: float = 3.0) -> st.SearchStrategy[float]:
    """Values with ``low <= |v| <= high`` (divisors, kinks of abs/relu)."""
    magnitude = st.floats(low, high, allow_nan=False, width=64)
    return st.tuples(magnitude, st.booleans()).map(lambda p: -p[0] if p[1] else p[0])


positive = st.floats(0.2, 3.0, allow_nan=False, width=64)


@st.composite
def axes(draw: Any, ndim: int) -> int | tuple[int, ...] | None:
    """``None``, one axis (maybe negative) or a tuple of distinct axes of an ``ndim`` array."""
    if ndim == 0:
        return None
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    chosen = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in chosen)


def leaves(*arrays: numpy.ndarray) -> list[Tensor]:
    return [Tensor(a.copy(), requires_grad=True) for a in arrays]


def assert_grads_have_input_shapes(out: Tensor, inputs: list[Tensor]) -> None:
    """Backward of ``sum(out)``: every leaf's gradient has the leaf's own shape and dtype."""
    out.sum().backward()
    for t in inputs:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == t.dtype
