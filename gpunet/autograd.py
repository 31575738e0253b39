"""Tensor, Function and the reverse-mode backward engine.

A :class:`Tensor` wraps an ``xp`` array (NumPy or CuPy). A :class:`Function` computes its
``forward`` on raw arrays and its ``backward`` on raw gradient arrays; calling a Function on
tensors records it in the graph when gradients are enabled. ``Tensor.grad`` is a raw array
(Chainer's convention), accumulated over every use of the tensor.

This module imports no op: the operators of :class:`Tensor` (``+``, ``@``, ``sum`` ...) are
installed by :mod:`gpunet.functional` when it loads (:func:`install_operators`).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy

from gpunet import backend, settings

Array = Any


class _GradMode:
    """Turns graph recording on or off: a context manager and a function decorator."""

    mode = True

    def __init__(self) -> None:
        self._scopes: list[Any] = []

    def __enter__(self) -> None:
        scope = settings.using(grad=self.mode)
        scope.__enter__()
        self._scopes.append(scope)

    def __exit__(self, *exc: object) -> None:
        self._scopes.pop().__exit__(*exc)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with settings.using(grad=mode):
                return func(*args, **kwargs)

        return wrapper


class _NoArgGradMode(_GradMode):
    """A grad mode taking no argument, so that it also decorates bare (``@gpunet.no_grad``)."""

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        if func is not None:  # used bare as a decorator
            return cls()(func)
        return super().__new__(cls)

    def __init__(self, func: Callable[..., Any] | None = None) -> None:
        super().__init__()


class no_grad(_NoArgGradMode):  # noqa: N801 - PyTorch's name
    """Run operations without recording the graph (inference, optimizer updates).

    ``with gpunet.no_grad(): ...``, or as a decorator: ``@gpunet.no_grad()`` or ``@gpunet.no_grad``.
    """

    mode = False


class enable_grad(_NoArgGradMode):  # noqa: N801
    """Record the graph again inside a :func:`no_grad` block (context manager or decorator)."""

    mode = True


class inference_mode(_GradMode):  # noqa: N801
    """PyTorch's ``inference_mode``: here the same as :class:`no_grad` (``mode=False``: recording on)."""

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode):  # used bare as a decorator
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: Any = True) -> None:
        super().__init__()
        self.mode = not bool(mode)


class set_grad_enabled(_GradMode):  # noqa: N801
    """Turn recording on or off: at once when called (``gpunet.set_grad_enabled(False)``, in the
    innermost :func:`gpunet.using` scope as the other setters), and back on exit when used as
    ``with gpunet.set_grad_enabled(mode):`` or as a decorator."""

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self.mode = bool(mode)
        self._previous = settings.current().grad
        settings.replace(grad=self.mode)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        settings.replace(grad=self._previous)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        settings.replace(grad=self._previous)  # decorating changes nothing now
        return super().__call__(func)


def is_grad_enabled() -> bool:
    """Whether operations currently record the graph."""
    return settings.current().grad


class OpError(ValueError):
    """An op received inputs it cannot work with (names the op, expected vs got)."""


_REFUSED_KINDS = {"O": "object", "U": "string", "S": "bytes", "V": "structured/void"}


def host_array(data: Any, op: str = "Tensor") -> numpy.ndarray:
    """``data`` as a NumPy array of numbers or bools; OpError naming ``op`` for ragged nesting or
    object/string/structured data (which no op can compute with)."""
    try:
        array = numpy.asarray(data)
    except (ValueError, TypeError) as exc:
        raise OpError(f"{op}: expected a rectangular nested list or array of numbers, got a ragged or "
                      f"mixed {type(data).__name__} ({str(exc).splitlines()[0][:80]})") from None
    check_data_dtype(array.dtype, op)
    return array


def check_data_dtype(dtype: Any, op: str = "Tensor") -> None:
    """OpError naming ``op`` unless ``dtype`` holds numbers or bools."""
    kind = getattr(dtype, "kind", None)
    if kind in _REFUSED_KINDS:
        raise OpError(f"{op}: expected numeric or bool data, got {_REFUSED_KINDS[kind]} dtype {dtype}; "
                      f"convert it first, e.g. numpy.asarray(x, dtype=numpy.float32)")


_DEVICES = {"cpu": "numpy", "numpy": "numpy", "cuda": "cupy", "cupy": "cupy"}


def device_backend(device: Any, op: str = "to") -> str:
    """The backend (``"numpy"``/``"cupy"``) of a device: PyTorch's ``"cpu"``/``"cuda"``/``"cuda:0"``
    (or a ``torch.device``), or gpunet's backend names. BackendError naming ``op`` otherwise."""
    text = getattr(device, "type", device) if not isinstance(device, str) else device
    index = getattr(device, "index", None) if not isinstance(device, str) else None
    if isinstance(text, str) and ":" in text:
        text, _, number = text.partition(":")
        index = int(number) if number.isdigit() else number
    name = _DEVICES.get(text.lower()) if isinstance(text, str) else None
    if name is None or index not in (None, 0):
        raise backend.BackendError(f"{op}: expected a device 'cpu', 'cuda' (device 0), 'numpy' or 'cupy', "
                                   f"got {device!r}")
    return name


class Tensor:
    """An n-dimensional array on the active backend that can take part in autograd.

    The PyTorch-style methods that run ops (``view``, ``max(dim)``, ``==``, ``float()`` ...) are
    installed by :mod:`gpunet.functional.operators`; the ones here only read the data.
    """

    _is_gpunet_tensor = True
    _version = 0  # bumped when ``t[...] = v`` rebinds a recorded tensor (ops record the version they saw)
    __array_priority__ = 1000  # numpy scalars/arrays on the left defer to our operators
    __hash__ = object.__hash__  # ``==`` is elementwise; hashing stays by identity (as PyTorch)

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if isinstance(data, numpy.ndarray):
            check_data_dtype(data.dtype)
        elif not backend.is_cupy_array(data):
            data = host_array(data)
        self.data = data
        self.grad: Array | None = None
        self.requires_grad = requires_grad
        self.creator: Function | None = None
        self.released = False  # True once a backward pass freed the graph that made this tensor
        self.name = name

    # ----- array-like facts -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None) -> Any:
        """The shape (a tuple) or, with ``dim``, the length of that dimension (PyTorch's ``size``)."""
        if dim is None:
            return tuple(self.data.shape)
        n = self.data.ndim
        if isinstance(dim, bool) or not isinstance(dim, (int, numpy.integer)) or not -n <= dim < n:
            raise OpError(f"size: expected dim in [{-n}, {n}) for shape {self.shape}, got {dim!r}")
        return int(self.data.shape[dim])

    def numel(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    def dim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    def nelement(self) -> int:
        return int(self.data.size)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def xp(self) -> Any:
        """The array module (numpy or cupy) holding this tensor."""
        return backend.get_array_module(self.data)

    @property
    def device(self) -> str:
        """``"cupy"`` or ``"numpy"``."""
        return "cupy" if backend.is_cupy_array(self.data) else "numpy"

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        """The rows (``self[0]``, ``self[1]`` ...), as PyTorch; TypeError for a 0-d tensor."""
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self.data.shape[0]):
            yield self[i]  # type: ignore[index]

    def _one(self, op: str) -> Any:
        if self.data.size != 1:
            hint = "; use .any() or .all()" if op == "bool" else ""
            raise OpError(f"{op}: expected a one-element tensor, got shape {self.shape}{hint}")
        return self.numpy().reshape(()).item()

    def __float__(self) -> float:
        return float(self._one("float"))

    def __int__(self) -> int:
        return int(self._one("int"))

    def __bool__(self) -> bool:
        return bool(self._one("bool"))

    def __index__(self) -> int:
        if self.dtype.kind not in "biu":
            raise TypeError(f"only integer tensors of one element can be used as an index, got {self.dtype}")
        return int(self._one("index"))

    def __complex__(self) -> complex:
        return complex(self._one("complex"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        """``numpy.asarray(t)`` for a host tensor (a CuPy tensor: use ``t.numpy()``)."""
        if backend.is_cupy_array(self.data):
            raise TypeError("cannot convert a cupy tensor to a NumPy array implicitly; call .numpy() or .cpu()")
        if copy:
            return numpy.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __repr__(self) -> str:
        first, *rest = repr(backend.to_numpy(self.data)).replace("array", "tensor", 1).split("\n")
        body = "\n".join([first] + [" " + line if line else line for line in rest])  # "tensor(" is 1 longer
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"{body[:-1]}{grad}, device={self.device!r})"

    def numpy(self) -> numpy.ndarray:
        """A host (NumPy) copy of the data."""
        return backend.to_numpy(self.data)

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        return self._one("item")

    def tolist(self) -> Any:
        """The data as (nested) Python lists of numbers; a number for a 0-d tensor."""
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph, in place."""
        self.creator, self.requires_grad = None, False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return the tensor (floating leaves only, as PyTorch)."""
        if requires_grad and self.dtype.kind not in "fc":
            raise OpError(f"requires_grad_: expected a floating tensor, got dtype {self.dtype}")
        if not requires_grad and self.creator is not None:
            raise OpError(f"requires_grad_: expected a leaf tensor to stop requiring grad, got one made by "
                          f"{self.creator.name}; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors not made by a recorded op (the ones whose ``.grad`` fills)."""
        return self.creator is None

    @property
    def is_cuda(self) -> bool:
        return backend.is_cupy_array(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    _post_accumulate_grad_hooks: dict[int, Callable[[Tensor], None]] | None = None

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> HookHandle:
        """Run ``hook(tensor)`` once per backward pass, when this leaf's ``.grad`` is complete
        (after its last contribution of that pass); PyTorch's name. ``handle.remove()`` undoes it."""
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
        if self._post_accumulate_grad_hooks is None:
            self._post_accumulate_grad_hooks = {}
        handle = HookHandle(self._post_accumulate_grad_hooks)
        self._post_accumulate_grad_hooks[handle.id] = hook
        return handle

    # ----- backward ---------------------------------------------------------------------
    def backward(self, grad: Array | None = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` that requires it.

        The graph is released afterwards unless ``retain_graph``.
        """
        if grad is None:
            if self.data.size != 1:
                raise OpError(f"backward: expected a one-element tensor (a loss) or an explicit "
                              f"grad, got shape {self.shape}")
            grad = self.xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if backend.get_array_module(grad) is not self.xp:
                raise backend.DeviceMismatchError(f"backward: expected grad on {self.device}, got "
                                                  f"{type(grad).__module__}.{type(grad).__name__}")
            if tuple(grad.shape) != self.shape or grad.dtype != self.dtype:
                raise OpError(f"backward: expected grad of shape {self.shape} and dtype {self.dtype}, got "
                              f"{tuple(grad.shape)} {grad.dtype}")
        _run_backward(self, grad, retain_graph)

    # Operators (``+ - * / @ ** []``, ``reshape``, ``sum`` ...) are installed by
    # gpunet.functional.install (see install_operators).


class HookHandle:
    """Removes one tensor hook (``remove()`` is idempotent; also a context manager)."""

    _next_id = 0

    def __init__(self, hooks: dict[int, Any]) -> None:
        HookHandle._next_id += 1
        self.id, self._hooks = HookHandle._next_id, hooks

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """A new Tensor (always a copy) on the active backend, or on ``device`` ("cpu"/"cuda"/"numpy"/
    "cupy"); floats default to the settings' dtype (float32). A scalar gives a 0-d tensor."""
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
        data = [x.numpy() if isinstance(x, Tensor) else x for x in data]
    raw = data.data if isinstance(data, Tensor) else data
    host = backend.to_numpy(raw) if backend.is_cupy_array(raw) else host_array(raw, "tensor")
    if dtype is None and host.dtype.kind == "f":
        dtype = settings.current().dtype
    host = numpy.array(host, dtype=dtype, order="C")  # a copy, 0-d kept 0-d
    xp = backend.xp() if device is None else backend.module_for(device_backend(device, "tensor"))
    return Tensor(xp.asarray(host), requires_grad=requires_grad)


def install_operators(methods: dict[str, Callable[..., Any]]) -> None:
    """Attach operator methods to :class:`Tensor` (called once by :mod:`gpunet.functional`)."""
    for name, method in methods.items():
        setattr(Tensor, name, method)


#: ``(device id, dtype, value bytes) -> 0-d device array``: the Python scalars of device ops, so
#: ``x * 0.5`` copies 0.5 to the device once, not at every call. The arrays are operands only
#: (never an op's output or a ``.grad``), so sharing them is safe; the oldest go past the limit.
_DEVICE_SCALARS: dict[tuple[int, str, bytes], Array] = {}
_DEVICE_SCALARS_MAX = 1024


def _device_scalar(xp: Any, value: Any, like: Array) -> Array:
    host = numpy.asarray(value, dtype=like.dtype)
    device = like.device
    key = (device.id, host.dtype.str, host.tobytes())
    cached = _DEVICE_SCALARS.get(key)
    if cached is None:
        with device:
            cached = xp.asarray(host)
        if len(_DEVICE_SCALARS) >= _DEVICE_SCALARS_MAX:
            _DEVICE_SCALARS.pop(next(iter(_DEVICE_SCALARS)))
        _DEVICE_SCALARS[key] = cached
    return cached


def as_array(value: Any, like: Array) -> Array:
    """``value`` as an array on ``like``'s backend; Python scalars take ``like``'s dtype.

    On CuPy a scalar's 0-d device array is cached (one host-to-device copy per distinct value).
    """
    if isinstance(value, Tensor):
        return value.data
    xp = backend.get_array_module(like)
    if isinstance(value, (int, float, bool)):
        if xp is numpy:
            return numpy.asarray(value, dtype=like.dtype)
        return _device_scalar(xp, value, like)
    if isinstance(value, numpy.generic):
        return xp.asarray(value)
    return value


def as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """Wrap ``value`` as a Tensor (scalars matched to ``like``'s dtype and device)."""
    if isinstance(value, Tensor):
        return value
    if like is not None:
        return Tensor(as_array(value, like.data))
    return Tensor(value)


class Function:
    """One differentiable op: subclasses define ``forward`` and ``backward`` on raw arrays.

    ``forward(*arrays)`` returns an array or a tuple of arrays; ``backward(*grads)`` receives
    one gradient per output (``None`` for outputs that received none, replaced by zeros unless
    the subclass sets ``accepts_none_grads``) and returns one gradient per input (or ``None``).

    State is explicit: before ``forward`` runs, ``needs_input_grad`` (one bool per input) and
    ``recording`` (whether the call enters the graph) are set; ``forward`` keeps what
    ``backward`` needs with :meth:`save_for_backward` (a no-op when not recording) and
    ``backward`` reads it back from :attr:`saved`. The engine calls :meth:`release` after the
    backward pass, which drops the saved values and the graph links.
    """

    accepts_none_grads = False
    needs_input_grad: tuple[bool, ...] = ()
    input_versions: tuple[int, ...] = ()
    recording = False
    xp: Any = numpy

    def __call__(self, *inputs: Any) -> Any:
        like = next((x for x in inputs if isinstance(x, Tensor)), None)
        if like is None:
            raise OpError(f"{self.name}: expected at least one Tensor input")
        tensors = [x if isinstance(x, Tensor) else Tensor(as_array(x, like.data)) for x in inputs]
        arrays = [t.data for t in tensors]
        try:
            self.xp = backend.get_array_module(*arrays)
        except backend.DeviceMismatchError as exc:
            where = ", ".join(f"{t.device} {t.shape}" for t in tensors)
            raise backend.DeviceMismatchError(f"{self.name}: expected inputs on one device, got {where}; "
                                              f"{exc}") from None
        self.recording = settings.current().grad and any(t.requires_grad for t in tensors)
        self.needs_input_grad = tuple(self.recording and t.requires_grad for t in tensors)
        self._saved: tuple[Any, ...] | None = ()
        try:
            raw = self.forward(*arrays)
        except (ValueError, IndexError) as exc:
            if isinstance(exc, OpError):
                raise
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise OpError(f"{self.name}: cannot apply to inputs of shapes {shapes}: {exc}") from exc
        outputs = raw if isinstance(raw, tuple) else (raw,)
        results = [Tensor(y) for y in outputs]
        if self.recording:
            self.inputs = tensors
            self.input_versions = tuple(t._version for t in tensors)
            self.outputs = [weakref.ref(y) for y in results]  # weak: no Function <-> Tensor cycle
            self.output_specs = [(y.shape, y.dtype) for y in results]
            for y in results:
                y.requires_grad = True
                y.creator = self
        return results[0] if len(results) == 1 else tuple(results)

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    def save_for_backward(self, *values: Any) -> None:
        """Keep ``values`` (arrays, shapes, anything) for :meth:`backward`; skipped when not recording."""
        if self.recording:
            self._saved = values

    @property
    def saved(self) -> tuple[Any, ...]:
        """What :meth:`save_for_backward` kept; OpError once the graph has been released."""
        if self._saved is None:
            raise OpError(f"{self.name}: backward through a graph that was already freed; call "
                          f"backward(retain_graph=True) the first time to backpropagate twice")
        return self._saved

    def release(self) -> None:
        """Drop the saved values and the links into the graph (after backward)."""
        for ref in self.outputs:
            y = ref()
            if y is not None:
                y.creator, y.released = None, True
        self.inputs = self.outputs = ()  # type: ignore[assignment]
        self._saved = None

    def forward(self, *xs: Array) -> Array | tuple[Array, ...]:
        raise NotImplementedError

    def backward(self, *gys: Array) -> Array | tuple[Array | None, ...] | None:
        raise NotImplementedError


def _topological_order(root: Tensor) -> list[Function]:
    """Functions reachable from ``root``, each after all functions that consume its outputs."""
    order: list[Function] = []
    seen: set[int] = set()
    stack: list[tuple[Function, bool]] = [(root.creator, False)] if root.creator else []
    while stack:
        func, expanded = stack.pop()
        if expanded:
            order.append(func)
            continue
        if id(func) in seen:
            continue
        seen.add(id(func))
        stack.append((func, True))
        for x in func.inputs:
            if x.creator is not None and id(x.creator) not in seen:
                stack.append((x.creator, False))
    order.reverse()
    return order


def _freed(tensor: Tensor) -> OpError:
    return OpError(f"backward: the graph that computed this tensor {tensor.shape} was freed by an earlier "
                   f"backward(); call the first backward(retain_graph=True) to backpropagate twice")


def _modified(func: Function, x: Tensor, version: int) -> OpError:
    return OpError(f"backward: expected {func.name}'s input {x.shape} at version {version}, got version "
                   f"{x._version}: it was modified by an in-place assignment after {func.name} used it "
                   f"(PyTorch: modified by an inplace operation); assign to a clone() instead")


class _LeafGrads:
    """Stores leaf gradients so that no two leaves share memory and no broadcast view is kept
    (an optimizer or clip_grad_norm updating one ``.grad`` in place must not change another)."""

    def __init__(self) -> None:
        # id -> the array itself: holding it keeps its id from being reused by a later array
        # (a freed owner's id may come back, which made a spurious copy: one more device op)
        self._owners: dict[int, Array] = {}

    def add(self, x: Tensor, gx: Array) -> None:
        if x.grad is not None:
            x.grad = x.grad + gx
            return
        owner = gx if gx.base is None else gx.base
        if id(owner) in self._owners or 0 in gx.strides:
            gx = gx.copy()
            owner = gx
        self._owners[id(owner)] = owner
        x.grad = gx


def _hooked_leaves_by_last_use(order: list[Function]) -> dict[int, list[Tensor]]:
    """``id(func) -> leaves with post-accumulate hooks whose last consumer in ``order`` is func``."""
    last: dict[int, tuple[Tensor, Function]] = {}
    for func in order:
        for x, needed in zip(func.inputs, func.needs_input_grad):
            if needed and x.creator is None and x._post_accumulate_grad_hooks:
                last[id(x)] = (x, func)
    done: dict[int, list[Tensor]] = {}
    for x, func in last.values():
        done.setdefault(id(func), []).append(x)
    return done


def _fire_post_accumulate_hooks(leaves: list[Tensor] | None) -> None:
    for x in leaves or ():
        for hook in list((x._post_accumulate_grad_hooks or {}).values()):
            hook(x)


def _run_backward(root: Tensor, grad: Array, retain_graph: bool) -> None:
    if root.creator is None:
        if root.released:
            raise _freed(root)
        if root.requires_grad:
            _LeafGrads().add(root, grad)
            _fire_post_accumulate_hooks([root])
        return
    leaves = _LeafGrads()
    # id -> (tensor, gradient): holding the tensor keeps its id valid and its weak reference alive
    grads: dict[int, tuple[Tensor, Array]] = {id(root): (root, grad)}
    order = _topological_order(root)
    complete = _hooked_leaves_by_last_use(order)  # leaves whose gradient is final after that func
    for func in order:
        outputs = [ref() for ref in func.outputs]
        gys = [grads.pop(id(y), (None, None))[1] if y is not None else None for y in outputs]
        if all(g is None for g in gys):
            if not retain_graph:
                func.release()
            _fire_post_accumulate_hooks(complete.get(id(func)))
            continue
        if not func.accepts_none_grads:
            gys = [g if g is not None else func.xp.zeros(shape, dtype=dtype)
                   for g, (shape, dtype) in zip(gys, func.output_specs)]
        gxs = func.backward(*gys)
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        for x, gx, needed, version in zip(func.inputs, gxs, func.needs_input_grad,
                                          func.input_versions or (0,) * len(func.inputs)):
            if gx is None or not needed:
                continue
            if x._version != version:
                raise _modified(func, x, version)
            if gx.shape != x.shape:
                gx = sum_to(gx, x.shape)
            if x.creator is None:
                if x.released:
                    raise _freed(x)
                leaves.add(x, gx)
            else:
                key = id(x)
                grads[key] = (x, gx if key not in grads else grads[key][1] + gx)
        if not retain_graph:
            func.release()
        _fire_post_accumulate_hooks(complete.get(id(func)))


def sum_to(gx: Array, shape: Sequence[int]) -> Array:
    """Reduce a broadcast gradient back to ``shape`` (the inverse of broadcasting)."""
    shape = tuple(shape)
    lead = gx.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and gx.shape[i + lead] != 1)
    if axes:
        gx = gx.sum(axis=axes, keepdims=True)
    if lead:
        gx = gx.reshape(shape)
    return gx
