"""Tensor's operators and array-like methods, installed on :class:`~gpunet.autograd.Tensor`
when :mod:`gpunet.functional` loads (so ``autograd`` imports no op module).

Names and semantics follow PyTorch (``dim=``/``keepdim=``, ``max(dim)`` -> ``(values, indices)``,
``transpose(dim0, dim1)``, ``float()``...); NumPy's ``axis=``/``keepdims=`` are accepted as aliases.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Tensor, device_backend, install_operators
from gpunet.functional import indexing, math, torch_methods

Dims = int | tuple[int, ...] | None


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


def __abs__(self: Tensor) -> Tensor:
    return math.abs(self)


def __pow__(self: Tensor, exponent: float) -> Tensor:
    return math.pow(self, exponent)


def __matmul__(self: Tensor, other: Any) -> Tensor:
    return math.matmul(self, other)


def __rmatmul__(self: Tensor, other: Any) -> Tensor:
    return math.matmul(other, self)


def __getitem__(self: Tensor, index: Any) -> Tensor:
    return math.getitem(self, index)


def __setitem__(self: Tensor, index: Any, value: Any) -> None:
    indexing.setitem(self, index, value)


# ----- comparisons and logic (bool tensors, no gradient) ---------------------------------------

def _comparable(other: Any) -> bool:
    return (isinstance(other, (Tensor, int, float, bool, numpy.generic, numpy.ndarray, list, tuple))
            or backend.is_cupy_array(other))


def _compare(fn: Any) -> Any:
    def method(self: Tensor, other: Any) -> Any:
        if not _comparable(other):
            return NotImplemented  # e.g. ``t == None``: Python falls back to identity (False)
        return fn(self, other)

    return method


def _reflected(fn: Any) -> Any:
    def method(self: Tensor, other: Any) -> Any:
        if not _comparable(other):
            return NotImplemented
        return fn(other, self)

    return method


def __contains__(self: Tensor, item: Any) -> bool:
    """``value in t``: whether any element equals ``value`` (as PyTorch)."""
    return builtins.bool(math.eq(self, item).any().item())


def __invert__(self: Tensor) -> Tensor:
    return math.bitwise_not(self)


def any(self: Tensor, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
        keepdims: bool | None = None) -> Tensor:
    return math.any(self, dim, keepdim, axis=axis, keepdims=keepdims)


def all(self: Tensor, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
        keepdims: bool | None = None) -> Tensor:
    return math.all(self, dim, keepdim, axis=axis, keepdims=keepdims)


# ----- shape ------------------------------------------------------------------------------------

def reshape(self: Tensor, *shape: Any) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return math.reshape(self, shape)


def view(self: Tensor, *shape: Any) -> Tensor:
    return math.view(self, *shape)


def transpose(self: Tensor, *axes: Any) -> Tensor:
    """Two ints swap those dims (PyTorch's ``transpose(dim0, dim1)``); a full permutation (or a
    tuple) reorders all of them and no argument reverses them (NumPy's ``transpose``)."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        return math.transpose(self, tuple(axes[0]))
    if len(axes) == 2:
        return math.swap_dims(self, axes[0], axes[1])
    return math.transpose(self, axes if axes else None)


def _transpose_all(self: Tensor) -> Tensor:
    return math.transpose(self, None)


def permute(self: Tensor, *dims: Any) -> Tensor:
    return math.permute(self, *dims)


def unsqueeze(self: Tensor, dim: int) -> Tensor:
    return math.unsqueeze(self, dim)


def squeeze(self: Tensor, dim: Dims = None) -> Tensor:
    return math.squeeze(self, dim)


def flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """All dims from ``start_dim`` to ``end_dim`` merged into one (by default: a 1-D tensor)."""
    return math.flatten(self, start_dim, end_dim)


def contiguous(self: Tensor) -> Tensor:
    """The tensor itself (gpunet's reshapes never need a contiguous input)."""
    return self


# ----- reductions -------------------------------------------------------------------------------

def sum(self: Tensor, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
        keepdims: bool | None = None) -> Tensor:
    return math.sum(self, dim, keepdim, axis=axis, keepdims=keepdims)


def mean(self: Tensor, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
         keepdims: bool | None = None) -> Tensor:
    return math.mean(self, dim, keepdim, axis=axis, keepdims=keepdims)


def max(self: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: Dims = None,
        keepdims: bool | None = None) -> Any:
    """``max()``: the maximum; ``max(dim)``: ``(values, indices)``; ``max(axis=...)``: values only."""
    return math.max(self, dim, keepdim, axis=axis, keepdims=keepdims)


def min(self: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: Dims = None,
        keepdims: bool | None = None) -> Any:
    """``min()``: the minimum; ``min(dim)``: ``(values, indices)``; ``min(axis=...)``: values only."""
    return math.min(self, dim, keepdim, axis=axis, keepdims=keepdims)


def argmax(self: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
           keepdims: bool | None = None) -> Tensor:
    return math.argmax(self, dim, keepdim, axis=axis, keepdims=keepdims)


def argmin(self: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
           keepdims: bool | None = None) -> Tensor:
    return math.argmin(self, dim, keepdim, axis=axis, keepdims=keepdims)


def var(self: Tensor, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None, axis: Dims = None, keepdims: bool | None = None,
        ddof: float | None = None) -> Tensor:
    return math.var(self, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims, ddof=ddof)


def std(self: Tensor, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None, axis: Dims = None, keepdims: bool | None = None,
        ddof: float | None = None) -> Tensor:
    return math.std(self, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims, ddof=ddof)


# ----- elementwise ------------------------------------------------------------------------------

def exp(self: Tensor) -> Tensor:
    return math.exp(self)


def log(self: Tensor) -> Tensor:
    return math.log(self)


def abs(self: Tensor) -> Tensor:
    return math.abs(self)


def sqrt(self: Tensor) -> Tensor:
    return math.sqrt(self)


def clamp(self: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    return math.clamp(self, min, max)


def clone(self: Tensor) -> Tensor:
    return math.clone(self)


# ----- dtype and device -------------------------------------------------------------------------

def astype(self: Tensor, dtype: Any) -> Tensor:
    return math.cast(self, dtype)


def _cast(self: Tensor, dtype: Any) -> Tensor:
    """PyTorch's casts: the tensor itself when the dtype already matches; a float -> float cast
    stays in the graph; to or from an integer/bool dtype the result carries no gradient."""
    dtype = numpy.dtype(dtype)
    if dtype == self.dtype:
        return self
    if dtype.kind != "f" or self.dtype.kind != "f":
        return Tensor(self.data.astype(dtype))
    return math.cast(self, dtype)


def _caster(dtype: str) -> Any:
    def method(self: Tensor) -> Tensor:
        return _cast(self, dtype)

    method.__doc__ = f"This tensor as {dtype} (itself if it already is)."
    return method


def _device_or_dtype(arg: Any) -> tuple[str | None, Any]:
    if isinstance(arg, Tensor):
        return arg.device, arg.dtype
    if isinstance(arg, str):
        if arg.partition(":")[0].lower() in ("cpu", "cuda", "numpy", "cupy"):
            return device_backend(arg, "to"), None
        try:
            return None, numpy.dtype(arg)
        except TypeError:
            raise backend.BackendError(f"to: expected a device ('cpu', 'cuda', 'numpy', 'cupy') or a dtype, "
                                       f"got {arg!r}") from None
    if hasattr(arg, "type") and not isinstance(arg, (numpy.dtype, type)):  # a torch.device
        return device_backend(arg, "to"), None
    return None, numpy.dtype(arg)


def to(self: Tensor, *args: Any, dtype: Any = None, device: Any = None, copy: bool = False,
       non_blocking: bool = False) -> Tensor:
    """``to("cpu" | "cuda" | "numpy" | "cupy")``, ``to(dtype)``, ``to(device, dtype)``, ``to(other)``.

    The tensor itself when nothing changes (as PyTorch); otherwise a copy that stays in the graph.
    """
    target, cast_to = (device_backend(device, "to") if device is not None else None), dtype
    for arg in args:
        new_device, new_dtype = _device_or_dtype(arg)
        target = new_device if new_device is not None else target
        cast_to = new_dtype if new_dtype is not None else cast_to
    out = self
    if target is not None:
        out = math.to_device(out, target)
    if cast_to is not None:
        out = _cast(out, cast_to)
    if copy and out is self:
        out = math.clone(self)
    return out


def cpu(self: Tensor) -> Tensor:
    """This tensor on the host (NumPy); itself if already there."""
    return math.to_device(self, "numpy")


def cuda(self: Tensor, device: Any = None) -> Tensor:
    """This tensor on the GPU (CuPy); BackendError saying why when no GPU is usable."""
    if device not in (None, 0) and device_backend(device, "cuda") != "cupy":
        raise backend.BackendError(f"cuda: expected a CUDA device, got {device!r}")
    return math.to_device(self, "cupy")


def type_as(self: Tensor, other: Tensor) -> Tensor:
    return _cast(self, other.dtype)


def install() -> None:
    """Attach the operators to Tensor."""
    methods: dict[str, Any] = {
        name: globals()[name]
        for name in [
            "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
            "__rtruediv__", "__neg__", "__abs__", "__pow__", "__matmul__", "__rmatmul__", "__getitem__",
            "__setitem__",
            "__invert__", "__contains__", "any", "all",
            "reshape", "view", "transpose", "permute", "unsqueeze", "squeeze", "flatten", "contiguous",
            "sum", "mean", "max", "min", "argmax", "argmin", "var", "std",
            "exp", "log", "abs", "sqrt", "clamp", "clone",
            "astype", "to", "cpu", "cuda", "type_as",
        ]
    }
    for dunder, fn in [("__eq__", math.eq), ("__ne__", math.ne), ("__lt__", math.lt), ("__le__", math.le),
                       ("__gt__", math.gt), ("__ge__", math.ge), ("__and__", math.bitwise_and),
                       ("__or__", math.bitwise_or), ("__xor__", math.bitwise_xor)]:
        methods[dunder] = _compare(fn)
    for dunder, fn in [("__rand__", math.bitwise_and), ("__ror__", math.bitwise_or),
                       ("__rxor__", math.bitwise_xor)]:
        methods[dunder] = _reflected(fn)
    methods["clip"] = clamp
    for name, dtype in [("float", "float32"), ("double", "float64"), ("half", "float16"), ("long", "int64"),
                        ("int", "int32"), ("bool", "bool")]:
        methods[name] = _caster(dtype)
    methods["T"] = property(_transpose_all)
    methods.update(torch_methods.methods())
    install_operators(methods)

