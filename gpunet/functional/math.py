"""Arithmetic, reductions, shape ops and elementwise math, each a small Function."""

from __future__ import annotations

import builtins
import itertools
from typing import Any, NamedTuple

import numpy

from gpunet import backend, parallel, settings
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
        parallel.blas_for(a.size * (b.shape[-1] if b.ndim > 1 else 1))  # BLAS's threads back after a region
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
        parallel.blas_for(g2.size * (a.shape[-1] if a is not None else b.shape[-2 if b_ndim > 1 else 0]))
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

    kind = "max"

    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        if a.size == 0:
            raise OpError(f"{self.kind}: expected a non-empty tensor, got shape {a.shape}")
        y = getattr(a, self.kind)(axis=self.axis, keepdims=True)
        self.save_for_backward(a, y)
        return y if self.keepdims else y.reshape(getattr(a, self.kind)(axis=self.axis).shape)

    def backward(self, gy):
        a, y = self.saved
        mask = (a == y).astype(gy.dtype)
        mask /= mask.sum(axis=self.axis, keepdims=True)
        return mask * _restore_axes(gy, a.shape, self.axis, self.keepdims)


class Min(Max):
    """Min over axes; the gradient is split evenly between tied minima."""

    kind = "min"


class TakeAlong(Function):
    """The values at ``index`` (an argmax/argmin with ``keepdims``) along ``axis``: the
    ``values`` of ``max(dim)``/``min(dim)``. The whole gradient goes to the chosen element."""

    def __init__(self, index: Any, axis: int, keepdim: bool) -> None:
        self.index, self.axis, self.keepdim = index, axis, keepdim

    def forward(self, a):
        self.save_for_backward(a.shape)
        y = self.xp.take_along_axis(a, self.index, axis=self.axis)
        return y if self.keepdim else y.squeeze(self.axis)

    def backward(self, gy):
        shape, = self.saved
        xp = self.xp
        if not self.keepdim:
            gy = xp.expand_dims(gy, self.axis)
        where = [1] * len(shape)
        where[self.axis] = shape[self.axis]
        chosen = xp.arange(shape[self.axis]).reshape(where) == self.index
        return chosen * gy


class Clamp(Function):
    """``clip(a, low, high)``; the gradient passes where ``low <= a <= high`` (as PyTorch's)."""

    def __init__(self, low: float | None, high: float | None) -> None:
        self.low, self.high = low, high

    def forward(self, a):
        if self.recording:
            inside = self.xp.ones(a.shape, dtype=bool)
            if self.low is not None:
                inside &= a >= self.low
            if self.high is not None:
                inside &= a <= self.high
            self.save_for_backward(inside)
        out = a
        if self.low is not None:
            out = self.xp.maximum(out, self.xp.asarray(self.low, dtype=a.dtype))
        if self.high is not None:
            out = self.xp.minimum(out, self.xp.asarray(self.high, dtype=a.dtype))
        return out if out is not a else a.copy()

    def backward(self, gy):
        inside, = self.saved
        return gy * inside


class Clone(Function):
    def forward(self, a):
        return a.copy()

    def backward(self, gy):
        return gy


class ToDevice(Function):
    """A copy on another backend; the gradient goes back to the input's backend."""

    def __init__(self, target: str) -> None:
        self.target = target

    def forward(self, a):
        self.save_for_backward("cupy" if backend.is_cupy_array(a) else "numpy")
        return backend.to_backend(a, self.target)

    def backward(self, gy):
        source, = self.saved
        return backend.to_backend(gy, source)


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
        if self.axes is not None and (len(self.axes) != a.ndim or builtins.any(
                not -a.ndim <= x < a.ndim for x in self.axes)
                or sorted(x % builtins.max(a.ndim, 1) for x in self.axes) != list(range(a.ndim))):
            raise OpError(f"{self.name}: expected a permutation of {a.ndim} axes, got {self.axes}")
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


class Permute(Transpose):
    pass


class Concat(Function):
    def __init__(self, axis: int, op: str = "concat") -> None:
        self.axis, self.op = axis, op

    @property
    def name(self) -> str:
        return self.op

    def forward(self, *arrays):
        first = arrays[0]
        if first.ndim == 0 or not -first.ndim <= self.axis < first.ndim:
            raise OpError(f"{self.op}: expected dim in [-{first.ndim}, {first.ndim}) for tensors of shape "
                          f"{first.shape}, got dim={self.axis}")
        axis = self.axis % first.ndim
        rest = first.shape[:axis] + first.shape[axis + 1:]
        for a in arrays[1:]:
            if a.ndim != first.ndim or a.shape[:axis] + a.shape[axis + 1:] != rest:
                shapes = ", ".join(str(x.shape) for x in arrays)
                raise OpError(f"{self.op}: expected tensors of the same shape except in dim {self.axis}, "
                              f"got {shapes}")
        self.save_for_backward(list(itertools.accumulate(a.shape[axis] for a in arrays))[:-1])
        return self.xp.concatenate(arrays, axis=axis)

    def backward(self, gy):
        edges, = self.saved
        return tuple(self.xp.split(gy, edges, axis=self.axis))


class Stack(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *arrays):
        first = arrays[0]
        if not -first.ndim - 1 <= self.axis <= first.ndim:
            raise OpError(f"stack: expected dim in [-{first.ndim + 1}, {first.ndim}] for tensors of shape "
                          f"{first.shape}, got dim={self.axis}")
        if builtins.any(a.shape != first.shape for a in arrays):
            shapes = ", ".join(str(x.shape) for x in arrays)
            raise OpError(f"stack: expected tensors of equal shape, got {shapes}")
        self.save_for_backward(len(arrays))
        return self.xp.stack(arrays, axis=self.axis)

    def backward(self, gy):
        count, = self.saved
        axis = self.axis % gy.ndim
        return tuple(gy[(slice(None),) * axis + (i,)] for i in range(count))


class Where(Function):
    """``where(cond, a, b)`` with a constant boolean condition."""

    def __init__(self, condition: Any) -> None:
        self.condition = condition

    def forward(self, a, b):
        condition = self.condition
        if not hasattr(condition, "dtype"):
            condition = self.xp.asarray(condition)
        if condition.dtype != bool:
            raise OpError(f"where: expected a bool condition, got dtype {condition.dtype}")
        if backend.is_cupy_array(condition) != backend.is_cupy_array(a):
            raise backend.DeviceMismatchError(
                f"where: expected the condition on the inputs' device, got the condition on "
                f"{'cupy' if backend.is_cupy_array(condition) else 'numpy'} and inputs on "
                f"{'cupy' if backend.is_cupy_array(a) else 'numpy'}")
        try:
            numpy.broadcast_shapes(condition.shape, a.shape, b.shape)
        except ValueError:
            raise OpError(f"where: expected condition and inputs that broadcast together, got shapes "
                          f"{condition.shape}, {a.shape}, {b.shape}") from None
        self.condition = condition
        return self.xp.where(condition, a, b)

    def backward(self, gy):
        zero = self.xp.zeros_like(gy)
        return self.xp.where(self.condition, gy, zero), self.xp.where(self.condition, zero, gy)


class Pad(Function):
    """Constant padding; ``widths`` is one ``(before, after)`` per dimension, negative crops."""

    def __init__(self, widths: list[tuple[int, int]], value: float) -> None:
        self.widths, self.value = widths, value

    def forward(self, a):
        crop = tuple(slice(-builtins.min(lo, 0), a.shape[d] + builtins.min(hi, 0))
                     for d, (lo, hi) in enumerate(self.widths))
        kept = a[crop]
        if builtins.any(s <= 0 for s in kept.shape) and a.size:
            raise OpError(f"pad: expected negative padding to leave every dimension non-empty, got {self.widths} "
                          f"for shape {a.shape}")
        grow = [(builtins.max(lo, 0), builtins.max(hi, 0)) for lo, hi in self.widths]
        self.save_for_backward(a.shape, crop, grow)
        return self.xp.pad(kept, grow, mode="constant", constant_values=self.value)

    def backward(self, gy):
        shape, crop, grow = self.saved
        inner = gy[tuple(slice(lo, gy.shape[d] - hi) for d, (lo, hi) in enumerate(grow))]
        if inner.shape == tuple(shape):
            return inner
        gx = self.xp.zeros(shape, dtype=gy.dtype)
        gx[crop] = inner
        return gx


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


class MinMax(NamedTuple):
    """What ``max(dim)``/``min(dim)`` return (PyTorch's ``torch.return_types.max``)."""

    values: Tensor
    indices: Tensor


def _dim(op: str, dim: Any, ndim: int, extra: int = 0) -> int:
    """``dim`` as an index in ``[0, ndim + extra)``; OpError naming ``op`` otherwise."""
    n = ndim + extra
    if isinstance(dim, bool) or not isinstance(dim, (int, numpy.integer)) or not -n <= dim < n:
        raise OpError(f"{op}: expected dim in [{-n}, {n}) for a tensor of {ndim} dims, got {dim!r}")
    return int(dim) % n


def _dims(op: str, dim: Any, axis: Any) -> Any:
    """PyTorch's ``dim=`` or its NumPy alias ``axis=`` (not both)."""
    if axis is None:
        return tuple(dim) if isinstance(dim, list) else dim
    if dim is not None:
        raise OpError(f"{op}: expected dim= or its alias axis=, got both (dim={dim!r}, axis={axis!r})")
    return tuple(axis) if isinstance(axis, list) else axis


def _keep(keepdim: bool, keepdims: bool | None) -> bool:
    return bool(keepdim if keepdims is None else keepdims)


def sum(a: Tensor, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,  # noqa: A001
        keepdims: bool | None = None) -> Tensor:
    return Sum(_dims("sum", dim, axis), _keep(keepdim, keepdims))(a)


def mean(a: Tensor, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,
         keepdims: bool | None = None) -> Tensor:
    return Mean(_dims("mean", dim, axis), _keep(keepdim, keepdims))(a)


def _extreme(kind: str, a: Tensor, dim: Any, keepdim: bool, axis: Axis, keepdims: bool | None) -> Any:
    keep = _keep(keepdim, keepdims)
    if dim is None:  # the whole tensor, or NumPy's axis= (values only, several axes allowed)
        return (Max if kind == "max" else Min)(_dims(kind, None, axis), keep)(a)
    if axis is not None:
        raise OpError(f"{kind}: expected dim= or its alias axis=, got both (dim={dim!r}, axis={axis!r})")
    if isinstance(dim, Tensor):
        raise OpError(f"{kind}: expected an int dim, got a Tensor (the elementwise {kind} of two tensors "
                      f"is where(a > b, a, b))")
    if isinstance(dim, (tuple, list)):
        raise OpError(f"{kind}: expected an int dim, got {dim!r}; axis= reduces several dims (values only)")
    d = _dim(kind, dim, a.ndim)
    if a.shape[d] == 0:
        raise OpError(f"{kind}: expected a non-empty dim {dim}, got shape {a.shape}")
    index = getattr(a.data, f"arg{kind}")(axis=d, keepdims=True)
    values = TakeAlong(index, d, keep)(a)
    indices = Tensor((index if keep else index.squeeze(d)).astype(numpy.int64))
    return MinMax(values, indices)


def max(a: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: Axis = None,  # noqa: A001
        keepdims: bool | None = None) -> Any:
    """The maximum. With ``dim`` (PyTorch): ``(values, indices)`` along that dim, the gradient going
    to the first maximal element. Without: the maximum over everything, or over NumPy's ``axis=``
    (one or several dims), values only, the gradient split between ties."""
    return _extreme("max", a, dim, keepdim, axis, keepdims)


def min(a: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: Axis = None,  # noqa: A001
        keepdims: bool | None = None) -> Any:
    """The minimum; like :func:`max`."""
    return _extreme("min", a, dim, keepdim, axis, keepdims)


def _arg(kind: str, a: Tensor, dim: Any, keepdim: bool, axis: Any, keepdims: bool | None) -> Tensor:
    op = f"arg{kind}"
    dim = _dims(op, dim, axis)
    if 0 in a.shape:
        raise OpError(f"{op}: expected a non-empty tensor, got shape {a.shape}")
    if dim is not None:
        dim = _dim(op, dim, a.ndim)
    keep = _keep(keepdim, keepdims)
    out = getattr(a.data, op)(axis=dim, keepdims=keep) if dim is not None or keep else getattr(a.data, op)()
    return Tensor(a.xp.asarray(out, dtype=numpy.int64))


def argmax(a: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
           keepdims: bool | None = None) -> Tensor:
    """Indices (int64) of the maxima along ``dim`` (of the flattened tensor without); no gradient."""
    return _arg("max", a, dim, keepdim, axis, keepdims)


def argmin(a: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
           keepdims: bool | None = None) -> Tensor:
    """Indices (int64) of the minima; like :func:`argmax`."""
    return _arg("min", a, dim, keepdim, axis, keepdims)


def var(a: Tensor, dim: Axis = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None, axis: Axis = None, keepdims: bool | None = None,
        ddof: float | None = None) -> Tensor:
    """Variance over ``dim``: ``sum((a - mean)^2) / (N - correction)``, unbiased (``correction=1``) by
    default as PyTorch's, whichever alias names the dims; ``unbiased=False`` or ``correction=0``
    (NumPy's ``ddof=``) for the population variance. ``N <= correction`` gives nan."""
    return _variance("var", a, dim, unbiased, keepdim, correction, axis, keepdims, ddof)


def std(a: Tensor, dim: Axis = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None, axis: Axis = None, keepdims: bool | None = None,
        ddof: float | None = None) -> Tensor:
    """Standard deviation, the square root of :func:`var` (unbiased by default)."""
    return sqrt(_variance("std", a, dim, unbiased, keepdim, correction, axis, keepdims, ddof))


def _variance(op: str, a: Tensor, dim: Any, unbiased: bool | None, keepdim: bool, correction: Any,
              axis: Any, keepdims: bool | None, ddof: Any) -> Tensor:
    given = [name for name, v in (("unbiased", unbiased), ("correction", correction), ("ddof", ddof))
             if v is not None]
    if len(given) > 1:
        raise OpError(f"{op}: expected one of unbiased=, correction= or ddof=, got {' and '.join(given)}")
    if a.dtype.kind not in "fc":
        raise OpError(f"{op}: expected a floating tensor, got dtype {a.dtype}")
    if unbiased is not None:
        correction = 1 if unbiased else 0
    elif correction is None:
        correction = 1 if ddof is None else ddof
    dims = _dims(op, dim, axis)
    keep = _keep(keepdim, keepdims)
    deviation = a - Mean(dims, True)(a)
    count = _count(a.shape, dims) if a.data.size else 0
    dof = count - correction
    scale = 1.0 / dof if dof > 0 else float("nan")
    return Sum(dims, keep)(deviation * deviation) * scale


def clamp(a: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """Limit values to ``[min, max]`` (either may be None); the gradient passes inside the range."""
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and not isinstance(bound, (int, float, numpy.number)):
            raise OpError(f"clamp: expected a Python number for {name}, got {type(bound).__name__}")
    if min is None and max is None:
        raise OpError("clamp: expected at least one of min or max, got neither")
    return Clamp(min, max)(a)


def clone(a: Tensor) -> Tensor:
    """A copy that stays in the graph (the gradient passes through)."""
    return Clone()(a)


def to_device(a: Tensor, name: str) -> Tensor:
    """``a`` on backend ``name`` (``"numpy"``/``"cupy"``), differentiable; ``a`` itself if already there."""
    return a if a.device == name else ToDevice(name)(a)


def reshape(a: Tensor, shape: tuple[int, ...]) -> Tensor:
    return Reshape(tuple(shape))(a)


def view(a: Tensor, *shape: Any) -> Tensor:
    """PyTorch's ``view``: a reshape (``-1`` infers one size)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Reshape(tuple(shape))(a)


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    """Insert a dimension of size 1 at ``dim`` (``-1``: last)."""
    d = _dim("unsqueeze", dim, a.ndim, extra=1)
    return Reshape(a.shape[:d] + (1,) + a.shape[d:])(a)


def squeeze(a: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """Drop dimensions of size 1: all of them, or those in ``dim`` that have size 1 (as PyTorch)."""
    if dim is None:
        drop = {i for i, s in enumerate(a.shape) if s == 1}
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        drop = {d for d in (_dim("squeeze", x, builtins.max(a.ndim, 1)) for x in dims)
                if a.ndim and a.shape[d] == 1}
    return Reshape(tuple(s for i, s in enumerate(a.shape) if i not in drop))(a)


def permute(a: Tensor, *dims: Any) -> Tensor:
    """Reorder the dimensions: ``permute(2, 0, 1)`` or ``permute((2, 0, 1))``."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return Permute(tuple(dims))(a)


def flatten(a: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge the dimensions ``start_dim..end_dim`` (inclusive) into one. The default
    ``start_dim=1`` keeps the batch dimension (``nn.Flatten``'s); ``Tensor.flatten`` starts at 0."""
    if a.ndim == 0:
        return Reshape((1,))(a)
    s, e = _dim("flatten", start_dim, a.ndim), _dim("flatten", end_dim, a.ndim)
    if s > e:
        raise OpError(f"flatten: expected start_dim <= end_dim, got start_dim={start_dim}, end_dim={end_dim} "
                      f"for shape {a.shape}")
    merged = 1
    for size in a.shape[s:e + 1]:
        merged *= size
    return Reshape(a.shape[:s] + (merged,) + a.shape[e + 1:])(a)


def transpose(a: Tensor, axes: tuple[int, ...] | None = None) -> Tensor:
    return Transpose(tuple(axes) if axes is not None else None)(a)


def swap_dims(a: Tensor, dim0: int, dim1: int) -> Tensor:
    """PyTorch's ``transpose(dim0, dim1)``: swap two dimensions."""
    n = a.ndim
    if not (-n <= dim0 < n and -n <= dim1 < n) or isinstance(dim0, bool) or isinstance(dim1, bool):
        return Transpose((dim0, dim1))(a)  # refused, naming the op and what came
    order = list(range(n))
    order[dim0 % n], order[dim1 % n] = order[dim1 % n], order[dim0 % n]
    return Transpose(tuple(order))(a)


def getitem(a: Tensor, index: Any) -> Tensor:
    return GetItem(_index_data(index))(a)


def _tensors(op: str, tensors: Any) -> list[Any]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise OpError(f"{op}: expected a list or tuple of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise OpError(f"{op}: expected at least one tensor, got an empty {type(tensors).__name__}")
    if not builtins.any(isinstance(t, Tensor) for t in tensors):
        raise OpError(f"{op}: expected at least one Tensor in the sequence, got "
                      f"{', '.join(type(t).__name__ for t in tensors)}")
    return list(tensors)


def concat(tensors: list[Tensor], axis: int = 0) -> Tensor:
    return Concat(axis)(*_tensors("concat", tensors))


def cat(tensors: list[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dimension ``dim`` (PyTorch's ``cat``)."""
    dim = _dims("cat", dim if axis is None else None, axis)
    return Concat(dim, "cat")(*_tensors("cat", tensors))


def stack(tensors: list[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join equally shaped tensors along a new dimension ``dim``."""
    dim = _dims("stack", dim if axis is None else None, axis)
    return Stack(dim)(*_tensors("stack", tensors))


def where(condition: Any, a: Any = None, b: Any = None) -> Any:
    """``a`` where ``condition`` (a bool tensor) holds, else ``b``; either may be a Python number.
    ``where(condition)`` alone gives the indices of the true elements, one tensor per dim."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    if a is None and b is None:
        cond_array = cond if hasattr(cond, "nonzero") else numpy.asarray(cond)
        return tuple(Tensor(i.astype(numpy.int64)) for i in cond_array.nonzero())
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        if not isinstance(condition, Tensor):
            raise OpError(f"where: expected a Tensor input or condition, got {type(a).__name__} and "
                          f"{type(b).__name__}")
        a = Tensor(condition.xp.asarray(a, dtype=_scalar_dtype(a)))
    return Where(cond)(a, b)


def _scalar_dtype(value: Any) -> Any:
    if isinstance(value, bool):
        return numpy.bool_
    if isinstance(value, int):
        return numpy.int64
    if isinstance(value, float):
        return settings.current().dtype
    return None


def pad(a: Tensor, pad: tuple[int, ...], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Constant padding in PyTorch's order: ``(left, right)`` for the last dim, then
    ``(top, bottom)`` for the one before, ...; negative widths crop."""
    if mode != "constant":
        raise OpError(f"pad: expected mode 'constant', got {mode!r}")
    widths = tuple(pad)
    if len(widths) % 2 or len(widths) // 2 > a.ndim or not builtins.all(
            isinstance(w, (int, numpy.integer)) and not isinstance(w, bool) for w in widths):
        raise OpError(f"pad: expected an even number of int widths, at most 2 per dim ({2 * a.ndim} for "
                      f"shape {a.shape}), got {pad!r}")
    per_dim = [(0, 0)] * a.ndim
    for k in range(len(widths) // 2):
        per_dim[a.ndim - 1 - k] = (int(widths[2 * k]), int(widths[2 * k + 1]))
    return Pad(per_dim, value)(a)


def one_hot(labels: Any, num_classes: int = -1) -> Tensor:
    """``(..., num_classes)`` int64 one-hot rows for integer class labels; no gradient.
    ``num_classes=-1`` uses ``labels.max() + 1``."""
    t = labels if isinstance(labels, Tensor) else Tensor(labels)
    if t.dtype.kind not in "iu":
        raise OpError(f"one_hot: expected integer class labels, got dtype {t.dtype}")
    host = backend.to_numpy(t.data)
    if num_classes == -1:
        if not host.size:
            raise OpError("one_hot: expected num_classes for empty labels, got num_classes=-1")
        num_classes = int(host.max()) + 1
    if not isinstance(num_classes, (int, numpy.integer)) or num_classes < 1:
        raise OpError(f"one_hot: expected num_classes >= 1 (or -1), got {num_classes!r}")
    if host.size and (host.min() < 0 or host.max() >= num_classes):
        raise OpError(f"one_hot: expected labels in [0, {num_classes}), got values in "
                      f"[{host.min()}, {host.max()}]")
    xp = t.xp
    return Tensor((t.data[..., None] == xp.arange(num_classes)).astype(numpy.int64))


# ----- comparisons and logic: bool (or integer) results, never in the graph -------------------

def _no_grad_op(op: str, fn: Any, *operands: Any, kinds: str | None = None) -> Tensor:
    raw = [x.data if isinstance(x, Tensor) else x for x in operands]
    arrays = [x for x in raw if isinstance(x, numpy.ndarray) or backend.is_cupy_array(x)]
    try:
        backend.get_array_module(*arrays)
    except backend.DeviceMismatchError as exc:
        where = ", ".join(f"{'cupy' if backend.is_cupy_array(x) else 'numpy'} {x.shape}" for x in arrays)
        raise backend.DeviceMismatchError(f"{op}: expected inputs on one device, got {where}; {exc}") from None
    if kinds is not None:
        for x in arrays:
            if x.dtype.kind not in kinds:
                raise OpError(f"{op}: expected bool or integer tensors, got dtype {x.dtype}")
    try:
        out = fn(*raw)
    except (ValueError, TypeError) as exc:
        shapes = ", ".join(str(getattr(x, "shape", type(x).__name__)) for x in raw)
        raise OpError(f"{op}: expected inputs that broadcast together, got {shapes} ({exc})") from None
    return Tensor(out)


def eq(a: Any, b: Any) -> Tensor:
    """Elementwise ``a == b`` as a bool tensor."""
    return _no_grad_op("eq", lambda x, y: x == y, a, b)


def ne(a: Any, b: Any) -> Tensor:
    return _no_grad_op("ne", lambda x, y: x != y, a, b)


def lt(a: Any, b: Any) -> Tensor:
    return _no_grad_op("lt", lambda x, y: x < y, a, b)


def le(a: Any, b: Any) -> Tensor:
    return _no_grad_op("le", lambda x, y: x <= y, a, b)


def gt(a: Any, b: Any) -> Tensor:
    return _no_grad_op("gt", lambda x, y: x > y, a, b)


def ge(a: Any, b: Any) -> Tensor:
    return _no_grad_op("ge", lambda x, y: x >= y, a, b)


def bitwise_and(a: Any, b: Any) -> Tensor:
    """``a & b``: logical for bool tensors, bitwise for integer ones."""
    return _no_grad_op("bitwise_and", lambda x, y: x & y, a, b, kinds="biu")


def bitwise_or(a: Any, b: Any) -> Tensor:
    return _no_grad_op("bitwise_or", lambda x, y: x | y, a, b, kinds="biu")


def bitwise_xor(a: Any, b: Any) -> Tensor:
    return _no_grad_op("bitwise_xor", lambda x, y: x ^ y, a, b, kinds="biu")


def bitwise_not(a: Tensor) -> Tensor:
    """``~a``: logical not for bool tensors, bitwise for integer ones."""
    return _no_grad_op("bitwise_not", lambda x: ~x, a, kinds="biu")


def any(a: Tensor, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,  # noqa: A001
        keepdims: bool | None = None) -> Tensor:
    """Whether any element (along ``dim``) is true; a bool tensor."""
    return _no_grad_op("any", lambda x: x.any(axis=_dims("any", dim, axis), keepdims=_keep(keepdim, keepdims)), a)


def all(a: Tensor, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,  # noqa: A001
        keepdims: bool | None = None) -> Tensor:
    """Whether every element (along ``dim``) is true; a bool tensor."""
    return _no_grad_op("all", lambda x: x.all(axis=_dims("all", dim, axis), keepdims=_keep(keepdim, keepdims)), a)
