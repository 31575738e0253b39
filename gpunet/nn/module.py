"""Module and Parameter: the containers every layer and model is built from."""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

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

    def __init__(self, data: Any, name: str | None = None) -> None:
        super().__init__(data, requires_grad=True, name=name)


class Module:
    """Base class of layers and models (PyTorch-style attribute registration).

    Counting layers follows the source text: the input layer is not a layer; every layer with
    weights counts (``layer_count`` on that class); a network is *deep* when its hidden plus
    output layers number two or more.
    """

    layer_count = 0

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

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

    # ----- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)``; with ``recurse=False`` only this module's own ones."""
        for name, param in self._parameters.items():
            yield (f"{prefix}.{name}" if prefix else name), param
        if not recurse:
            return
        for name, child in self._modules.items():
            yield from child.named_parameters(f"{prefix}.{name}" if prefix else name)

    def parameters(self, recurse: bool = True) -> list[Parameter]:
        return [p for _, p in self.named_parameters(recurse=recurse)]

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

    # ----- state --------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, Any]:
        """Parameter arrays by dotted name (PyTorch's names, e.g. ``fc1.weight``)."""
        return OrderedDict((name, p.data) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays into the parameters, checking names and shapes."""
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: state does not match {type(self).__name__}: "
                           f"missing {missing}, unexpected {unexpected}")
        for name, value in state.items():
            if name not in own:
                continue
            param = own[name]
            value = getattr(value, "data", value) if isinstance(value, Tensor) else value
            if tuple(value.shape) != param.shape:
                raise ValueError(f"load_state_dict: {name} expected shape {param.shape}, got {tuple(value.shape)}")
            param.data = backend.to_backend(value, param.device).astype(param.dtype, copy=True)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, name: str) -> Module:
        """Move every parameter to backend ``name`` (``"numpy"`` or ``"cupy"``), in place."""
        for p in self.parameters():
            p.data = backend.to_backend(p.data, name)
            if p.grad is not None:
                p.grad = backend.to_backend(p.grad, name)
        return self

    def astype(self, dtype: Any) -> Module:
        """Cast every parameter to ``dtype`` (e.g. float64 for gradient checks), in place."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
        return self

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


__all__ = ["Module", "Parameter", "RemovableHandle", "register_module_forward_hook",
           "register_module_forward_pre_hook"]
