"""Argument and input checks shared by every layer (issue 14's one rule for all layers).

- :func:`size` / :func:`probability` / :func:`positive` validate constructor arguments and
  raise ``ValueError``/``TypeError`` naming the class and the argument.
- :func:`check_input` is the one dtype rule: a floating layer takes floating input of exactly
  its own precision (PyTorch's rule); integer, bool, object or string input and floating input
  of another precision raise :class:`LayerDtypeError` naming the layer, the expected and the
  given dtype, and the two fixes (``x.float()`` / ``x.astype(...)`` or ``model.double()``).

Object and string arrays are meant to be refused when a Tensor is created
(``gpunet.autograd.Tensor.__init__``, owned by the Tensor API); until then the layers refuse
them here.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy

from gpunet.autograd import OpError

_CASTS = {"float16": "x.half()", "float32": "x.float()", "float64": "x.double()"}
_MODEL_CASTS = {"float16": "model.half()", "float32": "model.float()", "float64": "model.double()"}


class LayerDtypeError(OpError, TypeError):
    """A layer got input of a dtype it does not compute in (both a ``ValueError``/``OpError``
    and a ``TypeError``, so either ``except`` catches it)."""


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, numpy.bool_))


def size(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``; TypeError/ValueError naming ``owner`` and ``name``."""
    if not is_int(value):
        raise TypeError(f"{owner}: expected {name} to be an integer >= {minimum}, got "
                        f"{type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: expected {name} >= {minimum}, got {value!r}")
    return int(value)


def sizes(owner: str, name: str, value: Any, minimum: int = 1) -> tuple[int, ...]:
    """An int or a non-empty tuple/list of ints, each ``>= minimum``, as a tuple."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not items:
        raise ValueError(f"{owner}: expected {name} to hold at least one size, got {value!r}")
    return tuple(size(owner, name, v, minimum) for v in items)


def number(owner: str, name: str, value: Any) -> float:
    """A finite real number (not bool)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, numpy.bool_)):
        raise TypeError(f"{owner}: expected {name} to be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: expected {name} to be finite, got {value!r}")
    return value


def positive(owner: str, name: str, value: Any) -> float:
    """A finite number ``> 0`` (``eps``)."""
    value = number(owner, name, value)
    if value <= 0:
        raise ValueError(f"{owner}: expected {name} > 0, got {value!r}")
    return value


def probability(owner: str, name: str, value: Any) -> float:
    """A probability in ``[0, 1)`` (dropout's ``p``; ``momentum``)."""
    value = number(owner, name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: expected {name} in [0, 1), got {value!r}")
    return value


def flag(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, numpy.bool_)):
        raise TypeError(f"{owner}: expected {name} to be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def dtype_of(x: Any) -> numpy.dtype:
    dtype = getattr(x, "dtype", None)
    return numpy.dtype(dtype) if dtype is not None else numpy.asarray(x).dtype


def check_input(layer: str, x: Any, weight: Any = None, what: str = "input") -> None:
    """The one dtype rule. ``weight`` (a Tensor/array, or None for a weightless layer) fixes the
    expected dtype; without it any floating dtype is accepted."""
    got = dtype_of(x)
    expected = dtype_of(weight) if weight is not None else None
    if got.kind == "f" and (expected is None or got == expected):
        return
    if got.kind in "OUSVMmc":
        raise LayerDtypeError(f"{layer}: expected a floating {what}"
                              f"{f' of dtype {expected}' if expected is not None else ''}, got a {got} "
                              f"array (object, string, complex, date or structured data cannot be computed "
                              f"on); convert it to numbers first, e.g. numpy.asarray(data, dtype='float32')")
    want = expected if expected is not None else numpy.dtype("float32")
    if got.kind == "f":
        raise LayerDtypeError(f"{layer}: expected {what} of dtype {want} (the layer's weights), got {got}; "
                              f"convert the input with {_CASTS.get(want.name, 'x.astype(...)')} "
                              f"(x.astype('{want}')) or the model with {_MODEL_CASTS.get(got.name, 'model.to(...)')}")
    raise LayerDtypeError(f"{layer}: expected floating {what} of dtype {want}, got {got} (integer or bool "
                          f"tensors are not converted silently); convert it with "
                          f"{_CASTS.get(want.name, 'x.astype(...)')} (x.astype('{want}'))")
