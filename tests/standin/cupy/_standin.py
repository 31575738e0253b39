"""The engine of the strict CuPy stand-in: the device array, strict operand checks, counting.

A ``cupy.ndarray`` here wraps a NumPy array (``_a``) that plays the device memory. Everything
that real CuPy refuses is refused (implicit conversion to NumPy, NumPy operands), and every
event that matters for speed on a GPU is recorded with the gpunet source line behind it:

- ``sync``: the host waits for the device (``get``, ``item``, ``tolist``, ``float/int/bool``,
  printing, boolean-mask indexing, ``nonzero``, ``Device/Stream.synchronize``, ...);
- ``h2d``: a host-to-device copy (``cupy.asarray(host)``, NumPy values or indices given to a
  device array);
- ``op``: a device operation (a ufunc, reduction, matmul, copy, fill, kernel launch, ...). One
  call counts once, although real CuPy may launch more than one kernel for it.

``count()`` is a context manager collecting the events of its body; ``counts()`` returns those
since the process started (or :func:`reset`).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as _np

HERE = Path(__file__).resolve().parent
MANIFEST: dict[str, Any] = json.loads((HERE.parent / "cupy_manifest.json").read_text(encoding="utf-8"))
_SEP_GPUNET = f"{os.sep}gpunet{os.sep}"
_HERE_STR = str(HERE.parent)


# ------------------------------------------------------------------------------------ events
@dataclasses.dataclass(frozen=True)
class Event:
    kind: str   # "sync", "h2d" or "op"
    what: str   # the CuPy API that caused it ("ndarray.item", "ufunc multiply", ...)
    site: str   # the first gpunet frame on the stack: "gpunet/functional/loss.py:41"
    caller: str = ""  # the next gpunet frame in another file (who called a helper such as to_numpy)

    def where(self) -> str:
        return f"{self.site} <- {self.caller}" if self.caller else self.site


class Counts:
    """Events recorded by :func:`count` (or since :func:`reset`)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def _of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    @property
    def syncs(self) -> int:
        return len(self._of("sync"))

    @property
    def h2d(self) -> int:
        return len(self._of("h2d"))

    @property
    def ops(self) -> int:
        return len(self._of("op"))

    def sites(self, kind: str = "sync") -> collections.Counter:
        """``Counter({"gpunet/x.py:12 (ndarray.item)": n})`` for one kind of event."""
        return collections.Counter(f"{e.where()} ({e.what})" for e in self._of(kind))

    def summary(self) -> dict[str, int]:
        return {"syncs": self.syncs, "h2d": self.h2d, "ops": self.ops}

    def report(self, top: int = 20) -> str:
        lines = [f"syncs={self.syncs} h2d={self.h2d} ops={self.ops}"]
        for kind in ("sync", "h2d"):
            for site, n in self.sites(kind).most_common(top):
                lines.append(f"  {kind:4} {n:4d}  {site}")
        for site, n in self.sites("op").most_common(top):
            lines.append(f"  op   {n:4d}  {site}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Counts({self.summary()})"


_total = Counts()
_active: list[Counts] = []
_lock = threading.Lock()
_sync_allowed = [True]
#: Device work issued so far (``op`` and ``h2d`` events): the position of the null stream.
CLOCK = [0]
#: Buffers an NCCL collective on a side stream is still writing: ``(numpy memory, description)``.
#: Touching one before the null stream waited for the collective raises :class:`StreamOrderError`.
IN_FLIGHT: list[tuple[_np.ndarray, str]] = []


class StreamOrderError(RuntimeError):
    """Device work ordered wrongly across streams (a real GPU would race, not fail)."""


def check_in_flight(a: _np.ndarray, what: str) -> None:
    """Raise if ``a`` overlaps a buffer an NCCL collective is still writing."""
    for buf, how in IN_FLIGHT:
        if _np.may_share_memory(a, buf):
            raise StreamOrderError(f"{what} touches a buffer of {how} before the null stream waited for it "
                                   f"(record an Event on the NCCL stream after the collective and "
                                   f"null_stream.wait_event(it)), at {' <- '.join(x for x in _site() if x)}")


class DeviceSynchronized(RuntimeError):
    """Raised (like ``cupyx.DeviceSynchronized``) on a sync inside ``allow_synchronize(False)``."""


def _site() -> tuple[str, str]:
    """``(first gpunet frame, next gpunet frame in another file)`` of the current stack."""
    frame = sys._getframe(2)
    first_outside = site = None
    while frame is not None:
        name = frame.f_code.co_filename
        if _SEP_GPUNET in name:
            here = f"{name[name.rindex(_SEP_GPUNET) + 1:]}:{frame.f_lineno}"
            if site is None:
                site = here
            elif here.rpartition(":")[0] != site.rpartition(":")[0]:
                return site, here
        elif first_outside is None and not name.startswith(_HERE_STR):
            first_outside = f"{os.path.basename(name)}:{frame.f_lineno}"
        frame = frame.f_back
    return site or f"<outside gpunet> {first_outside}", ""


def record(kind: str, what: str) -> None:
    if kind == "sync" and not _sync_allowed[0]:
        raise DeviceSynchronized(f"{what}: device synchronization is not allowed here "
                                 f"(cupyx.allow_synchronize(False)), at {' <- '.join(_site())}")
    event = Event(kind, what, *_site())
    with _lock:
        if kind != "sync":
            CLOCK[0] += 1
        _total.events.append(event)
        for counts in _active:
            counts.events.append(event)


def counts() -> Counts:
    """Every event since the process started or :func:`reset`."""
    return _total


def reset() -> None:
    _total.events.clear()


@contextlib.contextmanager
def count() -> Iterator[Counts]:
    """``with cupy._standin.count() as c: ...``; then ``c.syncs``, ``c.sites()``, ``c.report()``."""
    counts_ = Counts()
    _active.append(counts_)
    try:
        yield counts_
    finally:
        _active.remove(counts_)


@contextlib.contextmanager
def allow_synchronize(allow: bool) -> Iterator[None]:
    previous = _sync_allowed[0]
    _sync_allowed[0] = bool(allow)
    try:
        yield
    finally:
        _sync_allowed[0] = previous


# ------------------------------------------------------------------------------ strictness
def not_implemented(qualname: str) -> NotImplementedError:
    return NotImplementedError(f"{qualname} exists in CuPy {MANIFEST['cupy_version']} but the CuPy "
                               f"stand-in (tests/standin) does not implement it")


def no_such_name(qualname: str) -> AttributeError:
    module, _, name = qualname.rpartition(".")
    return AttributeError(f"module {module!r} has no attribute {name!r} (not in CuPy "
                          f"{MANIFEST['cupy_version']}; see tests/standin/cupy_manifest.json)")


def unsupported(obj: Any) -> TypeError:
    return TypeError(f"Unsupported type {type(obj)}")


_SCALARS = (int, float, complex, bool, _np.generic)


def dev(obj: Any, *, allow_host: bool = False, what: str = "") -> Any:
    """The NumPy data behind ``obj``: device arrays unwrapped (recursively in lists, tuples and
    dicts), NumPy arrays refused like CuPy refuses them (``allow_host``: copied, counted h2d)."""
    if type(obj) is ndarray:
        if IN_FLIGHT:
            check_in_flight(obj._a, what or "an operation")
        return obj._a
    if isinstance(obj, _np.ndarray):
        if allow_host:
            record("h2d", what or "host array")
            return obj
        raise unsupported(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(dev(o, allow_host=allow_host, what=what) for o in obj)
    if isinstance(obj, dict):
        return {k: dev(v, allow_host=allow_host, what=what) for k, v in obj.items()}
    return obj


def wrap(obj: Any) -> Any:
    """NumPy results back as device arrays (NumPy scalars become 0-d device arrays)."""
    if isinstance(obj, _np.ndarray):
        return ndarray._from(obj)
    if isinstance(obj, _np.generic):
        return ndarray._from(_np.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(wrap(o) for o in obj)
    if isinstance(obj, list):
        return [wrap(o) for o in obj]
    return obj


def _arrays_in(obj: Any, out: list[_np.ndarray]) -> list[_np.ndarray]:
    if isinstance(obj, _np.ndarray):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _arrays_in(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _arrays_in(o, out)
    return out


def _fresh(result: Any, inputs: list[_np.ndarray]) -> bool:
    """Whether ``result`` holds an array that is not a view of an input (device work made it)."""
    produced = _arrays_in(result, []) + [_np.asarray(r) for r in _iter_generic(result)]
    return any(not any(_np.may_share_memory(r, i) for i in inputs) for r in produced)


def _iter_generic(obj: Any) -> list[Any]:
    if isinstance(obj, _np.generic):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [o for x in obj for o in _iter_generic(x)]
    return []


#: Functions whose output size depends on the data, so CuPy must read the device first.
SYNC_FUNCS = frozenset({"nonzero", "argwhere", "flatnonzero", "unique", "extract", "compress",
                        "asnumpy", "trim_zeros", "bincount", "unravel_index"})
#: Functions that write into an argument (always device work).
WRITE_FUNCS = frozenset({"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis"})
#: Functions that allocate only: no device work, and the memory is uninitialised.
EMPTY_FUNCS = frozenset({"empty", "empty_like"})


def generic_function(qualname: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A CuPy function over the NumPy one: operands unwrapped strictly, results wrapped, events
    recorded."""
    name = qualname.rpartition(".")[2]

    def call(*args: Any, **kwargs: Any) -> Any:
        a, k = dev(args), dev(kwargs)
        if name in SYNC_FUNCS or (name == "where" and len(args) + len(kwargs) == 1):
            record("sync", qualname)
        result = fn(*a, **k)
        inputs = _arrays_in((a, k), [])
        if name in WRITE_FUNCS or "out" in kwargs or _fresh(result, inputs):
            record("op", qualname)
        return wrap(result)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"Stand-in for {qualname} (NumPy {fn.__module__}.{getattr(fn, '__name__', name)})."
    return call


def _poison(a: _np.ndarray) -> _np.ndarray:
    """Fill ``a`` like uninitialised device memory: NaN for floats, 0xA5 bytes otherwise."""
    if a.dtype.kind in "fc":
        a.fill(_np.nan)
    elif a.size:
        a.view(_np.uint8).reshape(-1).fill(0xA5) if a.flags.c_contiguous else a.fill(-1)
    return a


GUARD = 64


def empty(shape: Any, dtype: Any = float, order: str = "C") -> ndarray:
    """Uninitialised memory: NaN-filled (0xA5 bytes for other dtypes) between NaN guard zones."""
    dtype = _np.dtype(dtype)
    shape = (int(shape),) if isinstance(shape, (int, _np.integer)) else tuple(int(s) for s in shape)
    size = int(_np.prod(shape, dtype=_np.int64))
    guard = max(GUARD, size)
    buf = _poison(_np.empty(size + 2 * guard, dtype=dtype))
    flat = buf[guard: guard + size]
    arr = flat.reshape(shape, order="F" if order == "F" else "C")
    out = ndarray._from(arr)
    out._guard = (buf, guard)
    return out


def check_guard(arr: ndarray, what: str) -> None:
    if arr._guard is None:
        return
    buf, guard = arr._guard
    head, tail = buf[:guard], buf[-guard:]
    if buf.dtype.kind in "fc":
        ok = bool(_np.isnan(head).all() and _np.isnan(tail).all())
    else:
        ok = bool((head.view(_np.uint8) == 0xA5).all() and (tail.view(_np.uint8) == 0xA5).all())
    if not ok:
        raise AssertionError(f"{what}: a kernel wrote outside a {arr.dtype} array of shape {arr.shape}")


# ---------------------------------------------------------------------------------- indexing
def _index(key: Any, shape: tuple[int, ...], what: str) -> tuple[Any, bool]:
    """NumPy index for ``key``: device parts unwrapped, host arrays/lists counted as copies,
    integer arrays wrapped into range like CuPy does. Returns ``(index, has_boolean_mask)``."""
    parts = key if isinstance(key, tuple) else (key,)
    converted: list[Any] = []
    mask = False
    for p in parts:
        if type(p) is ndarray:
            p = p._a
        elif isinstance(p, _np.ndarray) or (isinstance(p, list) and p and not isinstance(p[0], slice)):
            record("h2d", f"{what} with a host index")
            p = _np.asarray(p)
        if isinstance(p, _np.ndarray) and p.dtype == _np.bool_:
            mask = True
        converted.append(p)
    # integer arrays: wrap around like CuPy (no bounds check on the device)
    consumed = [p.ndim if isinstance(p, _np.ndarray) and p.dtype == _np.bool_ else
                0 if p is None or p is Ellipsis else 1 for p in converted]
    axis = 0
    for i, p in enumerate(converted):
        if p is Ellipsis:
            axis += len(shape) - sum(consumed)
            continue
        if isinstance(p, _np.ndarray) and p.dtype.kind in "iu" and axis < len(shape) and shape[axis]:
            converted[i] = _np.mod(p, shape[axis])
        axis += consumed[i]
    index = tuple(converted) if isinstance(key, tuple) else converted[0]
    return index, mask


# ---------------------------------------------------------------------------------- ndarray
_BINARY = {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
    "floordiv": "floor_divide", "mod": "remainder", "pow": "power", "matmul": "matmul",
    "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor", "lshift": "left_shift",
    "rshift": "right_shift", "divmod": "divmod",
}
_COMPARE = {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal", "eq": "equal",
            "ne": "not_equal"}
_UNARY = {"neg": "negative", "pos": "positive", "abs": "absolute", "invert": "invert"}
#: ndarray methods that modify the array in place (always device work).
_INPLACE_METHODS = frozenset({"fill", "sort", "put", "partition", "setfield", "itemset"})
_SYNC_METHODS = frozenset({"nonzero"})


def _operand(other: Any) -> Any:
    """The NumPy operand for a binary op, NotImplemented to defer, or TypeError like CuPy."""
    if type(other) is ndarray:
        if IN_FLIGHT:
            check_in_flight(other._a, "a binary operation")
        return other._a
    if isinstance(other, _SCALARS):
        return other
    if isinstance(other, _np.ndarray):
        raise unsupported(other)
    if getattr(other, "__array_priority__", -1) > ndarray.__array_priority__:
        return NotImplemented
    if isinstance(other, (list, tuple)):
        raise unsupported(other)
    return NotImplemented


def _make_binary(ufunc: str, reflected: bool = False, inplace: bool = False) -> Callable[..., Any]:
    fn = getattr(_np, ufunc)

    def op(self: ndarray, other: Any) -> Any:
        b = _operand(other)
        if b is NotImplemented:
            return NotImplemented
        if IN_FLIGHT:
            check_in_flight(self._a, f"ndarray.__{ufunc}__")
        record("op", f"ndarray.__{'i' if inplace else 'r' if reflected else ''}{ufunc}__")
        if inplace:
            fn(self._a, b, out=self._a)
            return self
        return wrap(fn(b, self._a) if reflected else fn(self._a, b))

    return op


class ndarray:  # noqa: N801 - CuPy's name
    """A device array of the stand-in: NumPy memory that refuses to meet NumPy."""

    __array_priority__ = 100
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, shape: Any, dtype: Any = float, memptr: Any = None, strides: Any = None,
                 order: str = "C") -> None:
        if memptr is not None or strides is not None:
            raise not_implemented("cupy.ndarray(memptr=/strides=)")
        made = empty(shape, dtype, order)
        self._a, self._guard = made._a, made._guard

    @classmethod
    def _from(cls, a: _np.ndarray) -> ndarray:
        out = object.__new__(cls)
        out._a = a
        out._guard = None
        return out

    # -- metadata (no device work) --
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray._from(self._a.T))

    @shape.setter  # type: ignore[no-redef]
    def shape(self, value: Any) -> None:
        view = self._a.view()
        view.shape = value
        self._a = view

    @property
    def base(self) -> ndarray | None:
        base = self._a.base
        return ndarray._from(base) if isinstance(base, _np.ndarray) else None

    @property
    def data(self) -> Any:
        from cupy.cuda import MemoryPointer

        return MemoryPointer(self._a)

    @property
    def device(self) -> Any:
        from cupy.cuda import Device

        return Device(0)

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        a = self._a
        return {"shape": a.shape, "typestr": a.dtype.str, "version": 3, "stream": 1,
                "data": (a.__array_interface__["data"][0], False),
                "strides": None if a.flags.c_contiguous else a.strides, "descr": a.dtype.descr}

    # -- what CuPy refuses --
    def __array__(self, dtype: Any = None, copy: Any = None) -> _np.ndarray:
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` "
                        "to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method != "__call__":
            raise TypeError(f"numpy.{ufunc.__name__}.{method} on a cupy.ndarray: NumPy ufunc "
                            f"method {method!r} cannot run on device arrays (the stand-in "
                            f"follows CuPy; for .at use cupyx.scatter_add)")
        a, k = dev(inputs), dev(kwargs)
        record("op", f"numpy.{ufunc.__name__} on device")
        result = ufunc(*a, **k)
        if "out" in kwargs:
            return kwargs["out"][0] if isinstance(kwargs["out"], tuple) else kwargs["out"]
        return wrap(result)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        import cupy

        module = func.__module__.replace("numpy", "cupy", 1)
        if module.startswith("cupy._core") or module == "cupy" or module.startswith("cupy._"):
            module = "cupy"
        target: Any = sys.modules.get(module, cupy)
        try:
            impl = getattr(target, func.__name__)
        except AttributeError:
            return NotImplemented
        return impl(*args, **kwargs)

    # -- host syncs --
    def get(self, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True) -> _np.ndarray:
        if IN_FLIGHT:
            check_in_flight(self._a, "ndarray.get")
        record("sync", "ndarray.get")
        if out is not None:
            out[...] = self._a
            return out
        return _np.array(self._a, order=order)

    def set(self, arr: Any, stream: Any = None) -> None:
        if not isinstance(arr, _np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        record("h2d", "ndarray.set")
        self._a[...] = arr

    def item(self, *args: Any) -> Any:
        record("sync", "ndarray.item")
        return self._a.item(*args)

    def tolist(self) -> Any:
        record("sync", "ndarray.tolist")
        return self._a.tolist()

    def __float__(self) -> float:
        record("sync", "float(ndarray)")
        return float(self._a)

    def __int__(self) -> int:
        record("sync", "int(ndarray)")
        return int(self._a)

    def __complex__(self) -> complex:
        record("sync", "complex(ndarray)")
        return complex(self._a)

    def __bool__(self) -> bool:
        record("sync", "bool(ndarray)")
        return bool(self._a)

    def __index__(self) -> int:
        record("sync", "operator.index(ndarray)")
        return self._a.__index__()

    def __repr__(self) -> str:
        record("sync", "repr(ndarray)")
        return repr(self._a)

    def __str__(self) -> str:
        record("sync", "str(ndarray)")
        return str(self._a)

    def __format__(self, spec: str) -> str:
        record("sync", "format(ndarray)")
        return format(self._a, spec) if self._a.ndim == 0 else str(self._a)

    def __reduce__(self) -> Any:
        record("sync", "pickle(ndarray)")
        return (_unpickle, (self._a.copy(),))

    # -- sequence protocol --
    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Iterator[ndarray]:
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __getitem__(self, key: Any) -> Any:
        index, mask = _index(key, self._a.shape, "ndarray.__getitem__")
        if IN_FLIGHT:
            check_in_flight(self._a, "ndarray.__getitem__")
        if mask:
            record("sync", "boolean-mask indexing")
        out = self._a[index]
        if not isinstance(out, _np.ndarray) or not _np.may_share_memory(out, self._a):
            record("op", "ndarray.__getitem__ (gather)")
        return wrap(out)

    def __setitem__(self, key: Any, value: Any) -> None:
        index, mask = _index(key, self._a.shape, "ndarray.__setitem__")
        if IN_FLIGHT:
            check_in_flight(self._a, "ndarray.__setitem__")
        v = dev(value, allow_host=True, what="ndarray.__setitem__ with a host value")
        if isinstance(v, list):
            record("h2d", "ndarray.__setitem__ with a host list")
        if mask and not isinstance(v, _SCALARS):
            record("sync", "boolean-mask assignment")
        record("op", "ndarray.__setitem__")
        self._a[index] = v

    def __copy__(self) -> ndarray:
        return self.copy()

    def __deepcopy__(self, memo: Any) -> ndarray:
        return self.copy()

    def copy(self, order: str = "C") -> ndarray:
        if IN_FLIGHT:
            check_in_flight(self._a, "ndarray.copy")
        record("op", "ndarray.copy")
        return ndarray._from(self._a.copy(order=order))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") and not name.startswith("__"):
            raise AttributeError(name)
        if name not in _NDARRAY_NAMES:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r} (not in CuPy "
                                 f"{MANIFEST['cupy_version']})")
        fn = getattr(self._a, name, None)
        if fn is None or not callable(fn):
            raise not_implemented(f"cupy.ndarray.{name}")
        a = self._a

        def method(*args: Any, **kwargs: Any) -> Any:
            if IN_FLIGHT:
                check_in_flight(a, f"ndarray.{name}")
            x, k = dev(args), dev(kwargs)
            if name in _SYNC_METHODS:
                record("sync", f"ndarray.{name}")
            result = fn(*x, **k)
            if name in _INPLACE_METHODS or "out" in kwargs or _fresh(result, [a]):
                record("op", f"ndarray.{name}")
            return wrap(result)

        method.__name__ = name
        return method

    def __dir__(self) -> list[str]:
        return sorted(_NDARRAY_NAMES)


def _unpickle(a: _np.ndarray) -> ndarray:
    record("h2d", "unpickle(ndarray)")
    return ndarray._from(a)


for _name, _uf in _BINARY.items():
    if _name == "divmod":
        continue
    setattr(ndarray, f"__{_name}__", _make_binary(_uf))
    setattr(ndarray, f"__r{_name}__", _make_binary(_uf, reflected=True))
    setattr(ndarray, f"__i{_name}__", _make_binary(_uf, inplace=True))
for _name, _uf in _COMPARE.items():
    setattr(ndarray, f"__{_name}__", _make_binary(_uf))
for _name, _uf in _UNARY.items():
    def _unary(self: ndarray, _uf: str = _uf) -> ndarray:
        record("op", f"ndarray.{_uf}")
        return wrap(getattr(_np, _uf)(self._a))
    setattr(ndarray, f"__{_name}__", _unary)

ndarray.__module__ = "cupy"
_NDARRAY_NAMES = frozenset(MANIFEST["classes"]["cupy.ndarray"])
_missing = {n for n in vars(ndarray) if not n.startswith("_") and n not in _NDARRAY_NAMES}
assert not _missing, f"stand-in ndarray defines names CuPy's does not: {_missing}"


# ------------------------------------------------------------------------------------ ufunc
class ufunc:  # noqa: N801 - CuPy's name
    """A CuPy ufunc over the NumPy one (``__call__``, ``reduce``, ``accumulate``, ``outer``, ``at``)."""

    def __init__(self, np_ufunc: Any, name: str | None = None) -> None:
        self._uf = np_ufunc
        self.name = self.__name__ = name or np_ufunc.__name__
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs
        self.types = np_ufunc.types

    def _run(self, method: str, args: tuple, kwargs: dict) -> Any:
        a, k = dev(args), dev(kwargs)
        record("op", f"ufunc {self.name}" + ("" if method == "__call__" else f".{method}"))
        fn = self._uf if method == "__call__" else getattr(self._uf, method)
        result = fn(*a, **k)
        if "out" in kwargs and kwargs["out"] is not None:
            out = kwargs["out"]
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return wrap(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("__call__", args, kwargs)

    def reduce(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("reduce", args, kwargs)

    def accumulate(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("accumulate", args, kwargs)

    def outer(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("outer", args, kwargs)

    def reduceat(self, *args: Any, **kwargs: Any) -> Any:
        raise not_implemented("cupy.ufunc.reduceat")

    def at(self, a: ndarray, indices: Any, b: Any = None) -> None:
        if type(a) is not ndarray:
            raise unsupported(a)
        index, _ = _index(indices, a.shape, f"cupy.{self.name}.at")
        record("op", f"ufunc {self.name}.at")
        self._uf.at(a._a, index, *(() if b is None else (dev(b),)))

    def __repr__(self) -> str:
        return f"<ufunc '{self.name}'>"


ufunc.__module__ = "cupy"
