"""Tensor's operators and array-like methods, installed on :class:`~gpunet.autograd.Tensor`
when :mod:`gpunet.functional` loads (so ``autograd`` imports no op module)."""

from __future__ import annotations

from typing import Any

from gpunet.autograd import Tensor, install_operators
from gpunet.functional import math


def __add__(self: Tensor, other: Any) -> Tensor:
    return math.add(self, other)


def __radd__(self: Tensor, other: Any) -> Tensor:
    return math.add(other, self)


def __sub__(self: Tensor, other: Any) -> Tensor:
    return math.sub(self, other)


def __rsub__(self: Tensor, other: Any) -> Tensor:
    return math.sub(other, self)


def __mul__(self: Tensor, other: Any) -> Tensor:
    return math.mul(self, other)


def __rmul__(self: Tensor, other: Any) -> Tensor:
    return math.mul(other, self)


def __truediv__(self: Tensor, other: Any) -> Tensor:
    return math.div(self, other)


def __rtruediv__(self: Tensor, other: Any) -> Tensor:
    return math.div(other, self)


def __neg__(self: Tensor) -> Tensor:
    return math.neg(self)


def __pow__(self: Tensor, exponent: float) -> Tensor:
    return math.pow(self, exponent)


def __matmul__(self: Tensor, other: Any) -> Tensor:
    return math.matmul(self, other)


def __rmatmul__(self: Tensor, other: Any) -> Tensor:
    return math.matmul(other, self)


def __getitem__(self: Tensor, index: Any) -> Tensor:
    return math.getitem(self, index)


def reshape(self: Tensor, *shape: Any) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return math.reshape(self, shape)


def transpose(self: Tensor, *axes: int) -> Tensor:
    return math.transpose(self, axes if axes else None)


def _transpose_all(self: Tensor) -> Tensor:
    return math.transpose(self, None)


def sum(self: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    return math.sum(self, axis, keepdims)


def mean(self: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    return math.mean(self, axis, keepdims)


def max(self: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    return math.max(self, axis, keepdims)


def exp(self: Tensor) -> Tensor:
    return math.exp(self)


def log(self: Tensor) -> Tensor:
    return math.log(self)


def argmax(self: Tensor, axis: int | None = None) -> Tensor:
    return Tensor(self.data.argmax(axis=axis))


def astype(self: Tensor, dtype: Any) -> Tensor:
    return math.cast(self, dtype)


def install() -> None:
    """Attach the operators to Tensor."""
    methods: dict[str, Any] = {
        name: globals()[name]
        for name in [
            "__add__",
            "__radd__",
            "__sub__",
            "__rsub__",
            "__mul__",
            "__rmul__",
            "__truediv__",
            "__rtruediv__",
            "__neg__",
            "__pow__",
            "__matmul__",
            "__rmatmul__",
            "__getitem__",
            "reshape",
            "transpose",
            "sum",
            "mean",
            "max",
            "exp",
            "log",
            "argmax",
        ]
    }
    methods["astype"] = astype
    methods["T"] = property(_transpose_all)
    install_operators(methods)
