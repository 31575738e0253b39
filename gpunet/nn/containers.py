"""Containers (Sequential, ModuleList, ModuleDict), activation modules and the multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.nn import validate
from gpunet.nn.linear import Linear
from gpunet.nn.module import Module


def _check_module(owner: str, value: Any, where: Any) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{owner}: expected Module arguments, got {type(value).__name__} at {where!r}")
    return value


class _IndexedModules(Module):
    """Children named ``"0"``, ``"1"``, ... (Sequential and ModuleList)."""

    def _index(self, index: Any) -> int:
        if not validate.is_int(index):
            raise TypeError(f"{type(self).__name__}: indices must be integers or slices, got {type(index).__name__}")
        n = len(self._modules)
        if not -n <= index < n:
            raise IndexError(f"{type(self).__name__}: index {index} is out of range for {n} modules")
        return int(index) % n

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return type(self)._from_list(list(self._modules.values())[index])
        return list(self._modules.values())[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules)[self._index(index)]
        setattr(self, key, _check_module(type(self).__name__, module, index))

    def __delitem__(self, index: Any) -> None:
        items = list(self._modules.values())
        if isinstance(index, slice):
            del items[index]
        else:
            del items[self._index(index)]
        for key in list(self._modules):
            delattr(self, key)
        for i, module in enumerate(items):
            setattr(self, str(i), module)

    def append(self, module: Module) -> _IndexedModules:
        setattr(self, str(len(self._modules)), _check_module(type(self).__name__, module, len(self._modules)))
        return self

    def extend(self, modules: Iterable[Module]) -> _IndexedModules:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, _check_module(type(self).__name__, module, index))
        for key in list(self._modules):
            delattr(self, key)
        for i, m in enumerate(items):
            setattr(self, str(i), m)


class Sequential(_IndexedModules):
    """Apply child modules in order; children are named ``"0"``, ``"1"``, ... like PyTorch, or by
    the keys of one ``OrderedDict`` argument: ``Sequential(OrderedDict([("fc", Linear(2, 3))]))``."""

    def __init__(self, *layers: Any) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            for name, layer in layers[0].items():
                if not isinstance(name, str) or not name or "." in name:
                    raise KeyError(f"Sequential: expected module names without '.', got {name!r}")
                setattr(self, name, _check_module("Sequential", layer, name))
            return
        for index, layer in enumerate(layers):
            setattr(self, str(index), _check_module("Sequential", layer, index))

    @classmethod
    def _from_list(cls, modules: list[Module]) -> Sequential:
        return Sequential(*modules)

    def forward(self, x: Any) -> Any:
        layers = list(self._modules.values())
        k = 0
        while k < len(layers):
            layer = layers[k]
            following = layers[k + 1] if k + 1 < len(layers) else None
            if k + 2 < len(layers) and _fusable_conv(layer, following, layers[k + 2]):
                x = layer.with_relu_pool(x, layers[k + 2])  # Conv2d, ReLU, pooling: one op
                k += 3
                continue
            if following is not None and _fusable(layer, following):
                # one op for two modules: Linear then ReLU (with_relu), ReLU then pooling (after_relu)
                x = layer.with_relu(x) if _plain_relu(following) else following.after_relu(x)
                k += 2
                continue
            x = layer(x)
            k += 1
        return x


def _plain_relu(module: Module) -> bool:
    return type(module) in (ReLU, Activation) and module.name == "relu"


def _fusable(layer: Module, following: Module) -> bool:
    """Whether ``following(layer(x))`` may run as one fused op: a layer that offers ``with_relu``
    followed by a plain ReLU, or a plain ReLU followed by a module that offers ``after_relu``;
    and no hook would see the intermediate output."""
    pair = ((hasattr(layer, "with_relu") and _plain_relu(following))
            or (_plain_relu(layer) and hasattr(following, "after_relu")))
    return pair and not layer.hooked() and not following.hooked()


def _fusable_conv(layer: Module, relu: Module, pool: Module) -> bool:
    """Whether ``pool(relu(layer(x)))`` may run as one fused op: a layer that offers
    ``with_relu_pool``, a plain ReLU, a max or average pooling layer, none of them hooked."""
    return (hasattr(layer, "with_relu_pool") and _plain_relu(relu) and getattr(pool, "kind", None) in ("max", "avg")
            and not (layer.hooked() or relu.hooked() or pool.hooked()))


class ModuleList(_IndexedModules):
    """A list of modules registered as children (their parameters belong to the owner)."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            if isinstance(modules, Module):
                raise TypeError("ModuleList: expected an iterable of modules, got a single Module")
            self.extend(modules)

    @classmethod
    def _from_list(cls, modules: list[Module]) -> ModuleList:
        return ModuleList(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward: iterate over it in your module's forward")


class ModuleDict(Module):
    """An ordered mapping of names to modules registered as children."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: expected str keys without '.', got {key!r}")
        setattr(self, key, _check_module("ModuleDict", module, key))

    def __delitem__(self, key: str) -> None:
        if key not in self._modules:
            raise KeyError(key)
        delattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def keys(self) -> list[str]:
        return list(self._modules)

    def values(self) -> list[Module]:
        return list(self._modules.values())

    def items(self) -> list[tuple[str, Module]]:
        return list(self._modules.items())

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in list(self._modules):
            delattr(self, key)

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        items = modules.items() if isinstance(modules, Mapping) else modules
        for entry in items:
            if not isinstance(entry, (tuple, list)) or len(entry) != 2:
                raise TypeError(f"ModuleDict.update: expected (name, module) pairs, got {entry!r}")
            self[entry[0]] = entry[1]

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward: index it in your module's forward")


class Activation(Module):
    """An activation function as a module: ``Activation("relu")``."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fn = F.get_activation(name)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return repr(self.name) if type(self) is Activation else ""


class ReLU(Activation):
    def __init__(self, inplace: bool = False) -> None:  # inplace: PyTorch's flag, accepted and ignored
        super().__init__("relu")


class Tanh(Activation):
    def __init__(self) -> None:
        super().__init__("tanh")


class Sigmoid(Activation):
    def __init__(self) -> None:
        super().__init__("sigmoid")


class Identity(Activation):
    """Returns its input (PyTorch's ``Identity`` also ignores constructor arguments)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("identity")


class LeakyReLU(Activation):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__("leaky_relu")
        self.negative_slope = validate.number("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(Activation):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__("gelu")
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: expected approximate 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """Softmax along ``dim`` (the last axis when None)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        if dim is not None and not validate.is_int(dim):
            raise TypeError(f"{type(self).__name__}: expected dim to be an integer or None, got {dim!r}")
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """Log-softmax along ``dim`` (the last axis when None)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, dim=self.dim)


class Flatten(Module):
    """Merge the dimensions from ``start_dim`` (1: all after the batch dimension) to ``end_dim``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        for name, v in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not validate.is_int(v):
                raise TypeError(f"Flatten: expected {name} to be an integer, got {v!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Tensor) -> Tensor:
        if self.end_dim in (-1, x.ndim - 1):
            return F.flatten(x, self.start_dim)
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
        return x.reshape(*shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class MLP(Sequential):
    """A fully-connected network from a list of sizes ``[d_in, h1, ..., d_out]``.

    ``len(sizes) - 1`` layers (the input layer is not counted); ``activation`` between layers,
    none after the output layer (losses take logits). He init for ReLU, Xavier otherwise.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu") -> None:
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) < 2:
            raise ValueError(f"MLP: expected at least [in, out] sizes, got {sizes!r}")
        for i, s in enumerate(sizes):
            validate.size("MLP", f"sizes[{i}]", s)
        init_name = "he" if activation == "relu" else "xavier"
        layers: list[Module] = []
        for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, init_name=init_name))
            if index < len(sizes) - 2:
                layers.append(Activation(activation))
        super().__init__(*layers)
        self.sizes = list(sizes)


__all__ = ["GELU", "MLP", "Activation", "Flatten", "Identity", "LeakyReLU", "LogSoftmax", "ModuleDict", "ModuleList",
           "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh"]
