"""Arithmetic, reductions, shape ops and elementwise math, each a small Function."""

from __future__ import annotations

import builtins
import itertools
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Function, OpError, Tensor

Axis = int | tuple[int, ...] | None


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy, gy


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        return gy, -gy


class Mul(Function):
    def forward(self, a, b):
        need_a, need_b = self.needs_input_grad
        self.save_for_backward(a if need_b else None, b if need_a else None)
        return a * b

    def backward(self, gy):
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        return gy * b if need_a else None, gy * a if need_b else None


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(a if self.needs_input_grad[1] else None, b)
        return a / b

    def backward(self, gy):
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        ga = gy / b  # part of gb as well
        return ga if need_a else None, -ga * a / b if need_b else None


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, gy):
        return -gy


class Pow(Function):
    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, a):
        self.save_for_backward(a)
        return a ** self.exponent

    def backward(self, gy):
        a, = self.saved
        return gy * self.exponent * a ** (self.exponent - 1)


class Exp(Function):
    def forward(self, a):
        y = self.xp.exp(a)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved
        return gy * y


class Log(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.log(a)

    def backward(self, gy):
        a, = self.saved
        return gy / a


class Abs(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.abs(a)

    def backward(self, gy):
        a, = self.saved
        return gy * self.xp.sign(a)


class Cast(Function):
    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype

    def forward(self, a):
        self.save_for_backward(a.dtype)
        return a.astype(self.dtype)

    def backward(self, gy):
        src, = self.saved
        return gy.astype(src)


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise OpError(f"matmul: expected a.shape[-1] == b.shape[-2], got {a.shape} @ {b.shape}")
        need_a, need_b = self.needs_input_grad
        # ga needs only b and gb only a: keep just what the inputs that need a gradient use
        self.save_for_backward(a if need_b else None, b if need_a else None, a.ndim, b.ndim)
        return a @ b

    def backward(self, gy):
        xp = self.xp
        a, b, a_ndim, b_ndim = self.saved
        need_a, need_b = self.needs_input_grad
        if a_ndim == 1 and b_ndim == 1:  # inner product: gy is a scalar
            return gy * b if need_a else None, gy * a if need_b else None
        g2 = gy
        if a_ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b_ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = gb = None
        if need_a:
            b2 = b[:, None] if b_ndim == 1 else b
            ga = g2 @ xp.swapaxes(b2, -1, -2)
            if a_ndim == 1:
                ga = ga[..., 0, :]
        if need_b:
            a2 = a[None, :] if a_ndim == 1 else a
            gb = xp.swapaxes(a2, -1, -2) @ g2
            if b_ndim == 1:
                gb = gb[..., 0]
        return ga, gb


class Sum(Function):
    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        self.save_for_backward(a.shape)
        return a.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        shape, = self.saved
        return self.xp.broadcast_to(_restore_axes(gy, shape, self.axis, self.keepdims), shape)


class Mean(Sum):
    def forward(self, a):
        self.save_for_backward(a.shape)
        return a.mean(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        shape, = self.saved
        return super().backward(gy) / _count(shape, self.axis)


class Max(Function):
    """Max over axes; the gradient is split evenly between tied maxima."""

    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        if a.size == 0:
            raise OpError(f"max: expected a non-empty tensor, got shape {a.shape}")
        y = a.max(axis=self.axis, keepdims=True)
        self.save_for_backward(a, y)
        return y if self.keepdims else y.reshape(a.max(axis=self.axis).shape)

    def backward(self, gy):
        a, y = self.saved
        mask = (a == y).astype(gy.dtype)
        mask /= mask.sum(axis=self.axis, keepdims=True)
        return mask * _restore_axes(gy, a.shape, self.axis, self.keepdims)


def _restore_axes(gy: Any, shape: tuple[int, ...], axis: Axis, keepdims: bool) -> Any:
    if keepdims or axis is None and gy.ndim == 0:
        return gy.reshape([1] * len(shape)) if gy.ndim == 0 and shape else gy
    axes = (axis,) if isinstance(axis, int) else tuple(axis) if axis is not None else tuple(range(len(shape)))
    axes = sorted(a % len(shape) for a in axes)
    out = gy
    for a in axes:
        out = backend.get_array_module(gy).expand_dims(out, a)
    return out


def _count(shape: tuple[int, ...], axis: Axis) -> int:
    if axis is None:
        axes = range(len(shape))
    else:
        axes = (axis,) if isinstance(axis, int) else axis
    count = 1
    for a in axes:
        count *= shape[a]
    return builtins.max(count, 1)


class Reshape(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, a):
        self.save_for_backward(a.shape)
        try:
            return a.reshape(self.shape)
        except ValueError:
            raise OpError(f"reshape: cannot reshape {a.shape} ({a.size} elements) into {self.shape}") from None

    def backward(self, gy):
        in_shape, = self.saved
        return gy.reshape(in_shape)


class Transpose(Function):
    def __init__(self, axes: tuple[int, ...] | None) -> None:
        self.axes = axes

    def forward(self, a):
        if self.axes is not None and sorted(x % builtins.max(a.ndim, 1) for x in self.axes) != list(range(a.ndim)):
            raise OpError(f"transpose: expected a permutation of {a.ndim} axes, got {self.axes}")
        return a.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return gy.transpose()
        inverse = numpy.argsort([a % gy.ndim for a in self.axes])  # host ints: no device round trip
        return gy.transpose(tuple(int(i) for i in inverse))


class GetItem(Function):
    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, a):
        self.save_for_backward(a.shape)
        return a[self.index]

    def backward(self, gy):
        shape, = self.saved
        gx = self.xp.zeros(shape, dtype=gy.dtype)
        backend.scatter_add(self.xp, gx, self.index, gy)
        return gx


class Concat(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *arrays):
        self.save_for_backward(list(itertools.accumulate(a.shape[self.axis] for a in arrays))[:-1])
        return self.xp.concatenate(arrays, axis=self.axis)

    def backward(self, gy):
        edges, = self.saved
        return tuple(self.xp.split(gy, edges, axis=self.axis))


class Where(Function):
    """``where(cond, a, b)`` with a constant boolean condition."""

    def __init__(self, condition: Any) -> None:
        self.condition = condition

    def forward(self, a, b):
        return self.xp.where(self.condition, a, b)

    def backward(self, gy):
        zero = self.xp.zeros_like(gy)
        return self.xp.where(self.condition, gy, zero), self.xp.where(self.condition, zero, gy)


def _index_data(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def add(a: Any, b: Any) -> Tensor:
    return Add()(a, b)


def sub(a: Any, b: Any) -> Tensor:
    return Sub()(a, b)


def mul(a: Any, b: Any) -> Tensor:
    return Mul()(a, b)


def div(a: Any, b: Any) -> Tensor:
    return Div()(a, b)


def neg(a: Tensor) -> Tensor:
    return Neg()(a)


def pow(a: Tensor, exponent: float) -> Tensor:  # noqa: A001 - mirrors the operator
    if isinstance(exponent, Tensor):
        raise OpError("pow: expected a Python number exponent, got a Tensor")
    return Pow(exponent)(a)


def exp(a: Tensor) -> Tensor:
    return Exp()(a)


def log(a: Tensor) -> Tensor:
    return Log()(a)


def abs(a: Tensor) -> Tensor:  # noqa: A001
    return Abs()(a)


def sqrt(a: Tensor) -> Tensor:
    return Pow(0.5)(a)


def cast(a: Tensor, dtype: Any) -> Tensor:
    return Cast(dtype)(a)


def matmul(a: Any, b: Any) -> Tensor:
    return MatMul()(a, b)


def sum(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return Sum(axis, keepdims)(a)


def mean(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return Mean(axis, keepdims)(a)


def max(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return Max(axis, keepdims)(a)


def reshape(a: Tensor, shape: tuple[int, ...]) -> Tensor:
    return Reshape(tuple(shape))(a)


def flatten(a: Tensor, start_dim: int = 1) -> Tensor:
    """Merge every dimension from ``start_dim`` on into one."""
    return Reshape(a.shape[:start_dim] + (-1,))(a)


def transpose(a: Tensor, axes: tuple[int, ...] | None = None) -> Tensor:
    return Transpose(tuple(axes) if axes is not None else None)(a)


def getitem(a: Tensor, index: Any) -> Tensor:
    return GetItem(_index_data(index))(a)


def concat(tensors: list[Tensor], axis: int = 0) -> Tensor:
    return Concat(axis)(*tensors)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    cond = condition.data if isinstance(condition, Tensor) else condition
    return Where(cond)(a, b)
