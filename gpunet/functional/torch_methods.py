"""More of PyTorch's everyday Tensor methods, installed on :class:`Tensor` next to the operators:
activations as methods (``x.relu()``, ``x.softmax(dim)``), ``pow``/``matmul``/``mm``, the named
comparisons (``eq`` ... ``ge``), ``masked_fill``, ``expand``, and the in-place ``fill_``/``zero_``/
``add_``/``sub_``/``mul_``/``div_``, which follow ``t[...] = value``'s autograd rules
(:mod:`gpunet.functional.indexing`)."""

from __future__ import annotations

from typing import Any

from gpunet.autograd import OpError, Tensor
from gpunet.functional import activation, indexing, math


def _pow(self: Tensor, exponent: Any) -> Tensor:
    return math.pow(self, exponent)


def _matmul(self: Tensor, other: Any) -> Tensor:
    return math.matmul(self, other)


def _mm(self: Tensor, other: Any) -> Tensor:
    if self.ndim != 2 or getattr(other, "ndim", 0) != 2:
        raise OpError(f"mm: expected two 2-D tensors, got shapes {self.shape} and {getattr(other, 'shape', ())}")
    return math.matmul(self, other)


def _masked_fill(self: Tensor, mask: Any, value: Any) -> Tensor:
    """A copy with ``value`` where ``mask`` (bool, broadcast) is true; the gradient flows elsewhere."""
    m = mask if isinstance(mask, Tensor) else Tensor(mask)
    if m.dtype.kind != "b":
        raise OpError(f"masked_fill: expected a bool mask, got dtype {m.dtype}")
    return math.where(m, Tensor(self.xp.full(self.shape, value, dtype=self.dtype)), self)


def _expand(self: Tensor, *sizes: Any) -> Tensor:
    """A broadcast of this tensor to ``sizes`` (``-1`` keeps a dim), as PyTorch's ``expand``."""
    shape = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    lead = len(shape) - self.ndim
    if lead < 0:
        raise OpError(f"expand: expected at least {self.ndim} sizes, got {shape}")
    target = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    try:
        return self + Tensor(self.xp.zeros(target, dtype=self.dtype))
    except (ValueError, OpError) as exc:
        raise OpError(f"expand: cannot expand shape {self.shape} to {shape}: {exc}") from None


def _inplace(name: str, fn: Any) -> Any:
    def method(self: Tensor, other: Any, *args: Any, **kwargs: Any) -> Tensor:
        def write() -> None:
            result = fn(Tensor(self.data), other, *args, **kwargs)
            indexing.write(self, Ellipsis, result.data)

        indexing.rebind(self, name, lambda old: fn(old, other, *args, **kwargs), other, write)
        return self

    method.__name__ = name
    method.__doc__ = f"In place: ``self[...] = {name.rstrip('_')}(self, other)`` (setitem's autograd rules)."
    return method


def _add(a: Tensor, b: Any, alpha: float = 1) -> Tensor:
    return a + (b if alpha == 1 else b * alpha)


def _sub(a: Tensor, b: Any, alpha: float = 1) -> Tensor:
    return a - (b if alpha == 1 else b * alpha)


def _fill_(self: Tensor, value: Any) -> Tensor:
    indexing.setitem(self, Ellipsis, value)
    return self


def _zero_(self: Tensor) -> Tensor:
    return _fill_(self, 0)


def methods() -> dict[str, Any]:
    table: dict[str, Any] = {
        "relu": activation.relu, "sigmoid": activation.sigmoid, "tanh": activation.tanh,
        "softmax": activation.softmax, "log_softmax": activation.log_softmax,
        "pow": _pow, "matmul": _matmul, "mm": _mm, "masked_fill": _masked_fill, "expand": _expand,
        "eq": math.eq, "ne": math.ne, "lt": math.lt, "le": math.le, "gt": math.gt, "ge": math.ge,
        "fill_": _fill_, "zero_": _zero_,
        "add_": _inplace("add_", _add), "sub_": _inplace("sub_", _sub),
        "mul_": _inplace("mul_", lambda a, b: a * b), "div_": _inplace("div_", lambda a, b: a / b),
    }
    return table
