"""In-place indexing assignment ``t[index] = value`` (``Tensor.__setitem__``) with PyTorch's
autograd rules.

- Outside the graph (neither side records a gradient) the data is written in place, so NumPy
  views and ``from_numpy`` arrays see the change, as PyTorch's shared storage does.
- On a leaf that requires grad (grad mode on) it is an error, as in PyTorch.
- Otherwise it is the out-of-place :class:`SetItem` op, and the tensor is rebound to its result:
  the tensor object becomes the op's output (``is_leaf`` false, ``grad_fn``-like ``creator``), and
  the previous value lives on as the op's input. Functions that saved the old value keep it (a
  copy is written), so no version counter is needed: what PyTorch reports as "modified by an
  inplace operation" simply differentiates the value each op saw.

The gradient is ``gy`` with the assigned positions zeroed for the tensor, and ``gy[index]``
(reduced to the value's shape when it was broadcast) for the value.
"""

from __future__ import annotations

import weakref
from typing import Any

from gpunet import settings
from gpunet.autograd import Function, OpError, Tensor, as_array, sum_to
from gpunet.functional.math import _index_data

__all__ = ["SetItem", "setitem"]


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
    op = "setitem"
    index = _index_data(index)
    value = _value(op, value, t)
    grad_on = settings.current().grad
    v_grad = isinstance(value, Tensor) and value.requires_grad
    if grad_on and t.requires_grad and t.creator is None:
        raise OpError(f"{op}: expected a tensor that is not a leaf requiring grad (PyTorch: a leaf Variable "
                      f"that requires grad is being used in an in-place operation), got a leaf {t.shape}; "
                      f"assign under no_grad(), or to a clone()")
    if not (grad_on and (t.requires_grad or v_grad)):
        data = value.data if isinstance(value, Tensor) else value
        try:
            t.data[index] = data
        except (ValueError, IndexError, TypeError) as exc:
            raise OpError(f"{op}: cannot assign a value of shape {getattr(data, 'shape', ())} to index "
                          f"{index!r} of a tensor {t.shape}: {exc}") from None
        return
    old = Tensor(t.data, requires_grad=t.requires_grad)
    old.creator = t.creator
    if old.creator is not None:  # the producer's output is now ``old``, not ``t``
        old.creator.outputs = [weakref.ref(old) if ref() is t else ref for ref in old.creator.outputs]
    out = SetItem(index)(old, value)
    func = out.creator
    t.data, t.creator, t.requires_grad = out.data, func, True
    func.outputs = [weakref.ref(t)]
