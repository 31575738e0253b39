"""Sequential, activation modules and the multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.nn.linear import Linear
from gpunet.nn.module import Module


class Sequential(Module):
    """Apply child modules in order; children are named ``"0"``, ``"1"``, ... like PyTorch."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for index, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: expected Module arguments, got {type(layer).__name__} at {index}")
            setattr(self, str(index), layer)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def forward(self, x: Tensor) -> Tensor:
        for layer in self._modules.values():
            x = layer(x)
        return x


class Activation(Module):
    """An activation function as a module: ``Activation("relu")``."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fn = F.get_activation(name)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return repr(self.name)


class ReLU(Activation):
    def __init__(self) -> None:
        super().__init__("relu")


class Tanh(Activation):
    def __init__(self) -> None:
        super().__init__("tanh")


class Sigmoid(Activation):
    def __init__(self) -> None:
        super().__init__("sigmoid")


class Identity(Activation):
    def __init__(self) -> None:
        super().__init__("identity")


class Flatten(Module):
    """Merge all dimensions after the batch dimension."""

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, 1)


class MLP(Sequential):
    """A fully-connected network from a list of sizes ``[d_in, h1, ..., d_out]``.

    ``len(sizes) - 1`` layers (the input layer is not counted); ``activation`` between layers,
    none after the output layer (losses take logits). He init for ReLU, Xavier otherwise.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu") -> None:
        if len(sizes) < 2:
            raise ValueError(f"MLP: expected at least [in, out] sizes, got {list(sizes)}")
        init_name = "he" if activation == "relu" else "xavier"
        layers: list[Module] = []
        for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, init_name=init_name))
            if index < len(sizes) - 2:
                layers.append(Activation(activation))
        super().__init__(*layers)
        self.sizes = list(sizes)
