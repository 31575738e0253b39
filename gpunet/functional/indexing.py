"""In-place indexing assignment ``t[index] = value`` (``Tensor.__setitem__``) with PyTorch's
autograd rules.

- Outside the graph (neither side records a gradient) the data is written in place, so NumPy
  views and ``from_numpy`` arrays see the change, as PyTorch's shared storage does.
- On a leaf that requires grad (grad mode on) it is an error, as in PyTorch.
- Otherwise it is the out-of-place :class:`SetItem` op, and the tensor is rebound to its result:
  the tensor object becomes the op's output (``is_leaf`` false, ``grad_fn``-like ``creator``), and
  the previous value lives on as the op's input.
- Each assignment bumps the tensor's version; a backward through an op recorded on an earlier
  version refuses with a one-line error, as PyTorch's "modified by an inplace operation" (here
  also for ops that saved nothing: the graph cannot tell which version they consumed).

The gradient is ``gy`` with the assigned positions zeroed for the tensor, and ``gy[index]``
(reduced to the value's shape when it was broadcast) for the value.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from gpunet import settings
from gpunet.autograd import Function, OpError, Tensor, as_array, sum_to
from gpunet.functional.math import _index_data

__all__ = ["SetItem", "rebind", "setitem", "write"]


class SetItem(Function):
    """``out = a.copy(); out[index] = v`` (``v`` cast to ``a``'s dtype, broadcast as NumPy)."""

    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, a, v):
        out = a.copy()
        out[self.index] = v.astype(a.dtype, copy=False)
        self.save_for_backward(v.shape)
        return out

    def backward(self, gy):
        v_shape, = self.saved
        ga = None
        if self.needs_input_grad[0]:
            ga = gy.copy()
            ga[self.index] = 0
        gv = sum_to(gy[self.index], v_shape) if self.needs_input_grad[1] else None
        return ga, gv


def _value(op: str, value: Any, like: Tensor) -> Any:
    if isinstance(value, Tensor):
        return value
    try:
        return as_array(value, like.data)
    except (TypeError, ValueError) as exc:
        raise OpError(f"{op}: expected a number, array or Tensor as the value, got {type(value).__name__}: "
                      f"{exc}") from None


def setitem(t: Tensor, index: Any, value: Any) -> None:
    """``t[index] = value`` in place (see the module docstring for the autograd rules)."""
    index = _index_data(index)
    value = _value("setitem", value, t)
    rebind(t, "setitem", lambda old: SetItem(index)(old, value), value,
           lambda: write(t, index, value.data if isinstance(value, Tensor) else value))


def write(t: Tensor, index: Any, data: Any) -> None:
    try:
        t.data[index] = data
    except (ValueError, IndexError, TypeError) as exc:
        raise OpError(f"setitem: cannot assign a value of shape {getattr(data, 'shape', ())} to index "
                      f"{index!r} of a tensor {t.shape}: {exc}") from None


def rebind(t: Tensor, op: str, compute: Callable[[Tensor], Tensor], other: Any,
           write: Callable[[], None]) -> None:
    """Make ``t`` hold ``compute(old t)`` in place: ``write()`` outside the graph, else the op's
    recorded result, ``t`` becoming its output. Either way ``t``'s version goes up, so a backward
    through an op that used the previous value refuses (as PyTorch's version counter)."""
    grad_on = settings.current().grad
    other_grad = isinstance(other, Tensor) and other.requires_grad
    if grad_on and t.requires_grad and t.creator is None:
        raise OpError(f"{op}: expected a tensor that is not a leaf requiring grad (PyTorch: a leaf Variable "
                      f"that requires grad is being used in an in-place operation), got a leaf {t.shape}; "
                      f"assign under no_grad(), or to a clone()")
    if not (grad_on and (t.requires_grad or other_grad)):
        write()
        t._version += 1
        return
    old = Tensor(t.data, requires_grad=t.requires_grad)
    old.creator = t.creator
    if old.creator is not None:  # the producer's output is now ``old``, not ``t``
        old.creator.outputs = [weakref.ref(old) if ref() is t else ref for ref in old.creator.outputs]
    out = compute(old)
    if out.shape != t.shape or out.creator is None:
        raise OpError(f"{op}: expected a result of the tensor's shape {t.shape}, got {out.shape}")
    if out.dtype != t.dtype:
        out = out.astype(t.dtype)
    func = out.creator
    t.data, t.creator, t.requires_grad = out.data, func, True
    func.outputs = [weakref.ref(t) if ref() is out else ref for ref in func.outputs]
    t._version += 1
