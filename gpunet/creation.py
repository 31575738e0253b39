"""Making tensors, with PyTorch's names: ``zeros``, ``ones``, ``full``, ``empty``, ``eye``,
``arange``, ``linspace``, ``rand``, ``randn``, ``randint``, ``randperm``, ``from_numpy`` and the
``*_like`` forms.

Sizes are given as ``zeros(2, 3)`` or ``zeros((2, 3))``. Floating results take the settings'
dtype (float32) unless ``dtype=`` says otherwise. A tensor lands on the active backend, or on
``device=`` (``"cpu"``/``"cuda"`` or ``"numpy"``/``"cupy"``). Random tensors are drawn on the host
with the library generator (:func:`gpunet.manual_seed`), as the weights are, so a seed gives the
same values on the CPU and on the GPU.
"""

from __future__ import annotations

from typing import Any

import numpy

from gpunet import backend, random, settings
from gpunet.autograd import OpError, Tensor, device_backend

Size = tuple[int, ...]


def _size(op: str, size: tuple[Any, ...]) -> Size:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(s, (int, numpy.integer)) and not isinstance(s, bool) and s >= 0 for s in size):
        raise OpError(f"{op}: expected the size as non-negative ints, got {size!r}")
    return tuple(int(s) for s in size)


def _xp(op: str, device: Any) -> Any:
    return backend.xp() if device is None else backend.module_for(device_backend(device, op))


def _dtype(dtype: Any, default: Any = None) -> numpy.dtype:
    if dtype is not None:
        return numpy.dtype(dtype)
    return numpy.dtype(default) if default is not None else settings.current().dtype


def _made(data: Any, requires_grad: bool) -> Tensor:
    out = Tensor(data)
    return out.requires_grad_(True) if requires_grad else out


def _float_dtype(op: str, dtype: Any) -> numpy.dtype:
    dt = _dtype(dtype)
    if dt.kind != "f":
        raise OpError(f"{op}: expected a floating dtype, got {dt}")
    return dt


def _fill_dtype(value: Any) -> Any:
    if isinstance(value, (bool, numpy.bool_)):
        return numpy.bool_
    if isinstance(value, (int, numpy.integer)):
        return numpy.int64
    return None


# ----- filled -----------------------------------------------------------------------------------

def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _made(_xp("zeros", device).zeros(_size("zeros", size), dtype=_dtype(dtype)), requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _made(_xp("ones", device).ones(_size("ones", size), dtype=_dtype(dtype)), requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor whose values are not set (zeros here, so that nothing undefined leaks)."""
    return _made(_xp("empty", device).zeros(_size("empty", size), dtype=_dtype(dtype)), requires_grad)


def full(size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ``fill_value``; the dtype follows the value (bool, int64, else the float default)."""
    shape = _size("full", (size,) if isinstance(size, (tuple, list)) else (size,))
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if not isinstance(fill_value, (int, float, bool, numpy.number, numpy.bool_)):
        raise OpError(f"full: expected a number fill_value, got {type(fill_value).__name__}")
    dt = _dtype(dtype, _fill_dtype(fill_value))
    return _made(_xp("full", device).full(shape, fill_value, dtype=dt), requires_grad)


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The ``n`` x ``m`` (default ``n`` x ``n``) identity matrix."""
    rows, cols = _size("eye", (n, n if m is None else m))
    return _made(_xp("eye", device).eye(rows, cols, dtype=_dtype(dtype)), requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """``[start, end)`` in steps of ``step`` (``arange(n)``: ``0 .. n-1``). All-int arguments give
    int64, as PyTorch; any float gives the float default."""
    if end is None:
        start, end = 0, start
    values = (start, end, step)
    if not all(isinstance(v, (int, float, numpy.number)) and not isinstance(v, bool) for v in values):
        raise OpError(f"arange: expected numbers for start, end and step, got {values!r}")
    if step == 0:
        raise OpError("arange: expected a non-zero step, got 0")
    integral = all(isinstance(v, (int, numpy.integer)) for v in values)
    dt = _dtype(dtype, numpy.int64 if integral else None)
    host = numpy.arange(start, end, step, dtype=numpy.int64 if integral else numpy.float64)
    return _made(_xp("arange", device).asarray(host.astype(dt)), requires_grad)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    count, = _size("linspace", (steps,))
    host = numpy.linspace(start, end, count, dtype=numpy.float64)
    return _made(_xp("linspace", device).asarray(host.astype(_dtype(dtype))), requires_grad)


# ----- random -----------------------------------------------------------------------------------

def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform values in ``[0, 1)``, drawn on the host with the library generator."""
    shape, dt = _size("rand", size), _float_dtype("rand", dtype)
    host = random.generator().random(shape)
    return _made(_xp("rand", device).asarray(host.astype(dt)), requires_grad)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal values, drawn on the host with the library generator."""
    shape, dt = _size("randn", size), _float_dtype("randn", dtype)
    host = random.generator().standard_normal(shape)
    return _made(_xp("randn", device).asarray(host.astype(dt)), requires_grad)


def randint(low: Any, high: Any = None, size: Any = None, *, dtype: Any = None, device: Any = None,
            requires_grad: bool = False) -> Tensor:
    """Integers in ``[low, high)``: ``randint(high, size)`` or ``randint(low, high, size)`` (int64)."""
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if size is None:
        raise OpError("randint: expected a size tuple, e.g. randint(10, (3,)), got none")
    shape = _size("randint", (size,) if isinstance(size, (tuple, list)) else (size,))
    if not all(isinstance(v, (int, numpy.integer)) and not isinstance(v, bool) for v in (low, high)):
        raise OpError(f"randint: expected int bounds, got low={low!r}, high={high!r}")
    if high <= low:
        raise OpError(f"randint: expected low < high, got low={low}, high={high}")
    host = random.generator().integers(low, high, size=shape, dtype=numpy.int64)
    return _made(_xp("randint", device).asarray(host.astype(_dtype(dtype, numpy.int64))), requires_grad)


def randperm(n: int, *, dtype: Any = None, device: Any = None) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64)."""
    count, = _size("randperm", (n,))
    host = random.generator().permutation(count).astype(numpy.int64)
    return Tensor(_xp("randperm", device).asarray(host.astype(_dtype(dtype, numpy.int64))))


# ----- from other data --------------------------------------------------------------------------

def from_numpy(array: Any) -> Tensor:
    """A host tensor sharing ``array``'s memory and keeping its dtype (as PyTorch's)."""
    if not isinstance(array, numpy.ndarray):
        raise OpError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def _like(op: str, t: Any, dtype: Any, device: Any) -> tuple[Size, numpy.dtype, Any]:
    if not isinstance(t, Tensor):
        raise OpError(f"{op}: expected a Tensor, got {type(t).__name__}")
    return t.shape, _dtype(dtype, t.dtype), t.device if device is None else device


def zeros_like(t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    shape, dt, where = _like("zeros_like", t, dtype, device)
    return zeros(shape, dtype=dt, device=where, requires_grad=requires_grad)


def ones_like(t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    shape, dt, where = _like("ones_like", t, dtype, device)
    return ones(shape, dtype=dt, device=where, requires_grad=requires_grad)


def empty_like(t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    shape, dt, where = _like("empty_like", t, dtype, device)
    return empty(shape, dtype=dt, device=where, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    shape, dt, where = _like("full_like", t, dtype, device)
    return full(shape, fill_value, dtype=dt, device=where, requires_grad=requires_grad)


def rand_like(t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    shape, dt, where = _like("rand_like", t, dtype, device)
    return rand(shape, dtype=_float_dtype("rand_like", dt), device=where, requires_grad=requires_grad)


def randn_like(t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    shape, dt, where = _like("randn_like", t, dtype, device)
    return randn(shape, dtype=_float_dtype("randn_like", dt), device=where, requires_grad=requires_grad)


def randint_like(t: Tensor, low: int, high: int | None = None, *, dtype: Any = None,
                 device: Any = None) -> Tensor:
    shape, dt, where = _like("randint_like", t, dtype, device)
    if high is None:
        low, high = 0, low
    return randint(low, high, shape, dtype=dt, device=where)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)
