"""Tensor, Function and the reverse-mode backward engine.

A :class:`Tensor` wraps an ``xp`` array (NumPy or CuPy). A :class:`Function` computes its
``forward`` on raw arrays and its ``backward`` on raw gradient arrays; calling a Function on
tensors records it in the graph when gradients are enabled. ``Tensor.grad`` is a raw array
(Chainer's convention), accumulated over every use of the tensor.

This module imports no op: the operators of :class:`Tensor` (``+``, ``@``, ``sum`` ...) are
installed by :mod:`gpunet.functional` when it loads (:func:`install_operators`).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy

from gpunet import backend, settings

Array = Any


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Run operations without recording the graph (inference, optimizer updates)."""
    with settings.using(grad=False):
        yield


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Record the graph again inside a :func:`no_grad` block."""
    with settings.using(grad=True):
        yield


def is_grad_enabled() -> bool:
    """Whether operations currently record the graph."""
    return settings.current().grad


class OpError(ValueError):
    """An op received inputs it cannot work with (names the op, expected vs got)."""


class Tensor:
    """An n-dimensional array on the active backend that can take part in autograd."""

    _is_gpunet_tensor = True
    __array_priority__ = 1000  # numpy scalars/arrays on the left defer to our operators

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if not (isinstance(data, numpy.ndarray) or backend.is_cupy_array(data)):
            data = numpy.asarray(data)
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

    @property
    def size(self) -> int:
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
        return len(self.data)

    def __repr__(self) -> str:
        body = repr(backend.to_numpy(self.data)).replace("array", "tensor", 1)
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"{body[:-1]}{grad}, device={self.device!r})"

    def numpy(self) -> numpy.ndarray:
        """A host (NumPy) copy of the data."""
        return backend.to_numpy(self.data)

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        return self.numpy().item()

    def to(self, name: str) -> Tensor:
        """This tensor's data on backend ``name`` (a new leaf tensor)."""
        return Tensor(backend.to_backend(self.data, name), requires_grad=self.requires_grad)

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

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
            if self.size != 1:
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


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A Tensor on the active backend; floats default to the settings' dtype (float32)."""
    host = backend.to_numpy(data.data if isinstance(data, Tensor) else data)
    if dtype is None and host.dtype.kind == "f":
        dtype = settings.current().dtype
    if dtype is not None:
        host = host.astype(dtype)
    return Tensor(backend.xp().asarray(numpy.ascontiguousarray(host)), requires_grad=requires_grad)


def install_operators(methods: dict[str, Callable[..., Any]]) -> None:
    """Attach operator methods to :class:`Tensor` (called once by :mod:`gpunet.functional`)."""
    for name, method in methods.items():
        setattr(Tensor, name, method)


def as_array(value: Any, like: Array) -> Array:
    """``value`` as an array on ``like``'s backend; Python scalars take ``like``'s dtype."""
    if isinstance(value, Tensor):
        return value.data
    xp = backend.get_array_module(like)
    if isinstance(value, (int, float, bool)):
        return xp.asarray(value, dtype=like.dtype)
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
    recording = False
    xp: Any = numpy

    def __call__(self, *inputs: Any) -> Any:
        tensors = [x if isinstance(x, Tensor) else None for x in inputs]
        like = next((t for t in tensors if t is not None), None)
        if like is None:
            raise OpError(f"{self.name}: expected at least one Tensor input")
        tensors = [t if t is not None else Tensor(as_array(x, like.data))
                   for t, x in zip(tensors, inputs)]
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


class _LeafGrads:
    """Stores leaf gradients so that no two leaves share memory and no broadcast view is kept
    (an optimizer or clip_grad_norm updating one ``.grad`` in place must not change another)."""

    def __init__(self) -> None:
        self._owners: set[int] = set()

    def add(self, x: Tensor, gx: Array) -> None:
        if x.grad is not None:
            x.grad = x.grad + gx
            return
        owner = gx if gx.base is None else gx.base
        if id(owner) in self._owners or 0 in gx.strides:
            gx = gx.copy()
            owner = gx
        self._owners.add(id(owner))
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
        for x, gx, needed in zip(func.inputs, gxs, func.needs_input_grad):
            if gx is None or not needed:
                continue
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
