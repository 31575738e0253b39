"""Module and Parameter: the containers every layer and model is built from."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from gpunet import backend
from gpunet.autograd import Tensor

_call_hooks: list[Any] = []  # callables (module, output) run after every module call


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
        out = self.forward(*args, **kwargs)
        for hook in _call_hooks:
            hook(self, out)
        return out

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

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, param in self._parameters.items():
            yield (f"{prefix}.{name}" if prefix else name), param
        for name, child in self._modules.items():
            yield from child.named_parameters(f"{prefix}.{name}" if prefix else name)

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """Total number of scalar weights."""
        return sum(p.size for p in self.parameters())

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
