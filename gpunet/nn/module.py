"""Module and Parameter: the containers every layer and model is built from."""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy

from gpunet import backend
from gpunet.autograd import Tensor

ForwardHook = Callable[["Module", tuple[Any, ...], Any], Any]
ForwardPreHook = Callable[["Module", tuple[Any, ...]], Any]

_handle_ids = itertools.count()

# Hooks run on every module call in the process (whole-tree observers such as gpunet.summary),
# keyed by handle id; only RemovableHandle.remove() takes one out.
_global_forward_pre_hooks: OrderedDict[int, ForwardPreHook] = OrderedDict()
_global_forward_hooks: OrderedDict[int, ForwardHook] = OrderedDict()


class RemovableHandle:
    """Returned by every ``register_*hook``; ``remove()`` unregisters that one hook.

    ``remove()`` is idempotent, and the handle is a context manager that removes its hook on
    exit: ``with model.register_forward_hook(f): model(x)``. It keeps only a weak reference to
    the hook table, so a handle never keeps a module alive.
    """

    def __init__(self, hooks: OrderedDict[int, Any]) -> None:
        self.id = next(_handle_ids)
        self._hooks_ref = weakref.ref(hooks)

    def remove(self) -> None:
        hooks = self._hooks_ref()
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"RemovableHandle(id={self.id})"


def _add_hook(hooks: OrderedDict[int, Any], hook: Callable[..., Any]) -> RemovableHandle:
    if not callable(hook):
        raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def register_module_forward_pre_hook(hook: ForwardPreHook) -> RemovableHandle:
    """Run ``hook(module, inputs)`` before the forward of *every* module (before that module's
    own pre-hooks). Like :meth:`Module.register_forward_pre_hook` it may return new inputs."""
    return _add_hook(_global_forward_pre_hooks, hook)


def register_module_forward_hook(hook: ForwardHook) -> RemovableHandle:
    """Run ``hook(module, inputs, output)`` after the forward of *every* module (before that
    module's own hooks); PyTorch's ``torch.nn.modules.module.register_module_forward_hook``.
    A non-None return value replaces the output."""
    return _add_hook(_global_forward_hooks, hook)


def _run_pre_hooks(hooks: OrderedDict[int, ForwardPreHook], module: Module,
                   args: tuple[Any, ...]) -> tuple[Any, ...]:
    for hook in list(hooks.values()):  # a hook may remove itself (or others) while running
        result = hook(module, args)
        if result is not None:
            args = result if isinstance(result, tuple) else (result,)
    return args


def _run_hooks(hooks: OrderedDict[int, ForwardHook], module: Module, args: tuple[Any, ...],
               out: Any) -> Any:
    for hook in list(hooks.values()):
        result = hook(module, args, out)
        if result is not None:
            out = result
    return out


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates."""

    def __init__(self, data: Any, name: str | None = None, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad, name=name)


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` returns (PyTorch's ``_IncompatibleKeys``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


_DEVICES = {"numpy": "numpy", "cpu": "numpy", "cupy": "cupy", "cuda": "cupy"}
_REFUSED_KINDS = {"U": "string", "S": "bytes", "O": "object", "M": "datetime64", "m": "timedelta64",
                  "c": "complex", "V": "structured"}


def _device_name(value: Any) -> str | None:
    """``"numpy"``/``"cupy"`` for a device spelling (``"cpu"``, ``"cuda"``, ``"cuda:0"``), else None."""
    if not isinstance(value, str):
        text = str(value) if type(value).__name__ == "device" else None  # a torch.device
        if text is None:
            return None
        value = text
    name = value.strip().lower()
    if name.startswith("cuda:"):
        name = "cuda"
    return _DEVICES.get(name)


def _as_state_array(key: str, value: Any) -> Any:
    """The array held by a state_dict value: an xp array, a gpunet Tensor, or anything with
    ``.detach().cpu().numpy()`` (a torch tensor). Anything else is a TypeError naming the key."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, numpy.ndarray) or backend.is_cupy_array(value):
        return value
    if all(callable(getattr(value, m, None)) for m in ("detach", "cpu", "numpy")):
        array = value.detach().cpu().numpy()
        if isinstance(array, numpy.ndarray):
            return array
    raise TypeError(f"load_state_dict: {key}: expected an array or a tensor, got {type(value).__name__}")


def _check_state_value(key: str, value: Any, target: Tensor) -> Any:
    array = _as_state_array(key, value)
    kind, own = array.dtype.kind, target.dtype.kind
    want = "real floating" if own == "f" else ("integer" if own in "iu" else str(target.dtype))
    if kind in _REFUSED_KINDS:
        raise TypeError(f"load_state_dict: {key}: expected a {want} array, got {_REFUSED_KINDS[kind]} "
                        f"dtype {array.dtype}")
    if kind not in ("f" if own == "f" else ("iu" if own in "iu" else own)):
        raise TypeError(f"load_state_dict: {key}: expected a {want} array (the parameter is {target.dtype}), "
                        f"got dtype {array.dtype}")
    if tuple(array.shape) != tuple(target.shape):
        raise ValueError(f"load_state_dict: {key} expected shape {tuple(target.shape)}, got {tuple(array.shape)}")
    return array


class Module:
    """Base class of layers and models (PyTorch-style attribute registration).

    Parameters (:class:`Parameter`), buffers (:meth:`register_buffer`: running statistics and
    other state that is saved but not trained) and child modules are registered by assignment.

    Counting layers follows the source text: the input layer is not a layer; every layer with
    weights counts (``layer_count`` on that class); a network is *deep* when its hidden plus
    output layers number two or more.
    """

    layer_count = 0

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers and not isinstance(value, (Parameter, Module)):
            value = self._as_buffer(name, value)
            buffers[name] = value
            object.__setattr__(self, name, value)
            return
        if buffers is not None:
            buffers.pop(name, None)
        # an entry that stays of its kind keeps its place (Sequential[i] = m keeps the order)
        if not isinstance(value, Parameter):
            self._parameters.pop(name, None)
        if not isinstance(value, Module):
            self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def hooked(self) -> bool:
        """Whether a forward (pre-)hook of this module, or a global one, would run on a call
        (a container fuses two children's ops only when neither is hooked)."""
        return bool(self._forward_pre_hooks or self._forward_hooks
                    or _global_forward_pre_hooks or _global_forward_hooks)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not (self._forward_pre_hooks or self._forward_hooks
                or _global_forward_pre_hooks or _global_forward_hooks):
            return self.forward(*args, **kwargs)
        args = _run_pre_hooks(_global_forward_pre_hooks, self, args)
        args = _run_pre_hooks(self._forward_pre_hooks, self, args)
        out = self.forward(*args, **kwargs)
        out = _run_hooks(_global_forward_hooks, self, args, out)
        return _run_hooks(self._forward_hooks, self, args, out)

    # ----- hooks (PyTorch's API) ------------------------------------------------------------
    def register_forward_pre_hook(self, hook: ForwardPreHook) -> RemovableHandle:
        """Run ``hook(module, inputs)`` before each forward of this module; ``inputs`` is the
        tuple of positional arguments. A non-None return value (a tuple, or one value that is
        wrapped in a tuple) replaces them. Hooks run in registration order."""
        return _add_hook(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook: ForwardHook) -> RemovableHandle:
        """Run ``hook(module, inputs, output)`` after each forward of this module (not of its
        children: register on them for that). A non-None return value replaces the output, and
        the next hook sees the replacement. Hooks run in registration order."""
        return _add_hook(self._forward_hooks, hook)

    # ----- registration -------------------------------------------------------------------
    def _as_buffer(self, name: str, value: Any) -> Tensor | None:
        if value is None:
            return None
        if isinstance(value, Tensor):
            return value if not value.requires_grad else Tensor(value.data)
        if isinstance(value, numpy.ndarray) or backend.is_cupy_array(value):
            return Tensor(value)
        raise TypeError(f"{type(self).__name__}: buffer {name!r} must be a Tensor, an array or None, "
                        f"got {type(value).__name__}")

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Register ``tensor`` (a Tensor, an array or None) as state that is not trained: it is
        in :meth:`state_dict` (unless ``persistent=False``), moved by :meth:`to` and cast by
        :meth:`float`/:meth:`double` when floating. Read it back as ``self.<name>``."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{type(self).__name__}.register_buffer: expected a non-empty name without '.', "
                           f"got {name!r}")
        if name in self._parameters or name in self._modules or (name in self.__dict__ and name not in self._buffers):
            raise KeyError(f"{type(self).__name__}.register_buffer: attribute {name!r} already exists")
        value = self._as_buffer(name, tensor)
        self._buffers[name] = value
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, value)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}.register_parameter: expected a Parameter or None, "
                            f"got {type(param).__name__}")
        setattr(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module: expected a Module, got {type(module).__name__}")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{type(self).__name__}.add_module: expected a non-empty name without '.', got {name!r}")
        setattr(self, name, module)
        if module is None:
            self._modules[name] = None  # type: ignore[assignment]

    # ----- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)``; with ``recurse=False`` only this module's own ones."""
        for name, param in self._parameters.items():
            yield (f"{prefix}.{name}" if prefix else name), param
        if not recurse:
            return
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}.{name}" if prefix else name)

    def parameters(self, recurse: bool = True) -> list[Parameter]:
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, buffer)`` for every buffer that is not None."""
        for name, buf in self._buffers.items():
            if buf is not None:
                yield (f"{prefix}.{name}" if prefix else name), buf
        if not recurse:
            return
        for name, child in self.named_children():
            yield from child.named_buffers(f"{prefix}.{name}" if prefix else name)

    def buffers(self, recurse: bool = True) -> list[Tensor]:
        return [b for _, b in self.named_buffers(recurse=recurse)]

    def num_parameters(self) -> int:
        """Total number of scalar weights."""
        return sum(p.numel() for p in self.parameters())

    @property
    def num_layers(self) -> int:
        """Layers with weights, counted without the input layer."""
        return sum(m.layer_count for m in self.modules())

    @property
    def is_deep(self) -> bool:
        """Hidden + output layers >= 2."""
        return self.num_layers >= 2

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every child (recursively), then on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ----- state --------------------------------------------------------------------------
    def _state_tensors(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """PyTorch's state_dict order: each module's parameters, then its persistent buffers,
        then its children's."""
        for name, param in self._parameters.items():
            yield prefix + name, param
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent:
                yield prefix + name, buf
        for name, child in self.named_children():
            yield from child._state_tensors(f"{prefix}{name}.")

    def state_dict(self, keep_vars: bool = False) -> OrderedDict[str, Any]:
        """Parameter and persistent buffer arrays by dotted name (PyTorch's names and order,
        e.g. ``fc1.weight``, ``bn.running_mean``); Tensors with ``keep_vars=True``."""
        return OrderedDict((name, t if keep_vars else t.data) for name, t in self._state_tensors())

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters and buffers; returns ``(missing_keys, unexpected_keys)``.

        Every value is checked before anything is copied: ``state`` must be a mapping with str
        keys; each value an array, a gpunet Tensor or a torch tensor (``.detach().cpu().numpy()``);
        of a real floating dtype for a floating parameter (the parameter's own kind otherwise:
        integers for ``num_batches_tracked``); of the parameter's shape. Strings, bytes,
        datetimes, complex, structured and object arrays are refused. Each error names the key.
        With ``strict`` (the default) missing or unexpected keys are a KeyError.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping of name -> array (such as state_dict()), "
                            f"got {type(state).__name__}")
        bad = [k for k in state if not isinstance(k, str)]
        if bad:
            raise TypeError(f"load_state_dict: expected str keys, got {bad[0]!r} ({type(bad[0]).__name__})")
        own = dict(self._state_tensors())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: state does not match {type(self).__name__}: "
                           f"missing {missing}, unexpected {unexpected}")
        checked = [(own[k], _check_state_value(k, v, own[k])) for k, v in state.items() if k in own]
        for target, array in checked:  # all checked: now copy
            target.data = backend.to_backend(array, target.device).astype(target.dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: ``None`` (the default, as PyTorch) or zeros in place."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (``False``) or unfreeze every parameter, in place; returns self."""
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def _move(self, name: str) -> None:
        for p in self.parameters():
            p.data = backend.to_backend(p.data, name)
            if p.grad is not None:
                p.grad = backend.to_backend(p.grad, name)
        for b in self.buffers():
            b.data = backend.to_backend(b.data, name)

    def _cast(self, dtype: Any) -> None:
        dtype = numpy.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: expected a floating dtype to cast to, got {dtype}")
        for t in [*self.parameters(), *self.buffers()]:
            if t.dtype.kind == "f":
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad = t.grad.astype(dtype)

    def to(self, *args: Any, device: Any = None, dtype: Any = None) -> Module:
        """Move and/or cast in place: ``to("cpu" | "numpy" | "cuda" | "cupy")``, ``to("float64")``,
        ``to(device, dtype)``. Casting changes floating parameters and buffers only."""
        for arg in args:
            if _device_name(arg) is not None:
                device = arg
            else:
                dtype = arg
        if device is not None:
            name = _device_name(device)
            if name is None:
                raise ValueError(f"{type(self).__name__}.to: expected a device 'cpu', 'cuda', 'numpy' or "
                                 f"'cupy', got {device!r}")
            self._move(name)
        if dtype is not None:
            try:
                numpy.dtype(dtype)
            except TypeError:
                raise TypeError(f"{type(self).__name__}.to: expected a device or a dtype, got {dtype!r}") from None
            self._cast(dtype)
        return self

    def cpu(self) -> Module:
        return self.to("numpy")

    def cuda(self, device: Any = None) -> Module:
        return self.to("cupy")

    def float(self) -> Module:
        """Cast floating parameters and buffers to float32."""
        self._cast(numpy.float32)
        return self

    def double(self) -> Module:
        """Cast floating parameters and buffers to float64."""
        self._cast(numpy.float64)
        return self

    def half(self) -> Module:
        self._cast(numpy.float16)
        return self

    def astype(self, dtype: Any) -> Module:
        """Cast floating parameters and buffers to ``dtype`` (e.g. float64 for gradient checks)."""
        self._cast(dtype)
        return self

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self.named_children():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


__all__ = ["IncompatibleKeys", "Module", "Parameter", "RemovableHandle", "register_module_forward_hook",
           "register_module_forward_pre_hook"]
