"""Dense layers: Linear and the Perceptron of the source text."""

from __future__ import annotations

import math

from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.nn import init, validate
from gpunet.nn.module import Module, Parameter


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape ``(out_features, in_features)``.

    ``init``: ``"default"`` (PyTorch's U(-1/sqrt(in), 1/sqrt(in))), ``"xavier"`` or ``"he"``;
    the bias starts at U(-1/sqrt(in), 1/sqrt(in)) (``"default"``) or zero.
    """

    layer_count = 1

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init_name: str = "default") -> None:
        super().__init__()
        in_features = validate.size("Linear", "in_features", in_features)
        out_features = validate.size("Linear", "out_features", out_features)
        validate.flag("Linear", "bias", bias)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(init.initialize(init_name, (out_features, in_features)))
        if bias:
            bound = 1.0 / math.sqrt(in_features) if init_name == "default" else 0.0
            self.bias = Parameter(init.uniform((out_features,), bound) if bound else init.zeros((out_features,)))
        else:
            self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        validate.check_input("Linear", x, self.weight)
        return F.linear(x, self.weight, self.bias)

    def with_relu(self, x: Tensor) -> Tensor:
        """``relu(self(x))`` as one fused op (what a container calls for this layer then a ReLU)."""
        validate.check_input("Linear", x, self.weight)
        return F.linear_relu(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Perceptron(Module):
    """A d-dimensional perceptron: ``activation(w0 * 1 + w1 x1 + ... + wd xd)``.

    The bias is the weight ``w0`` of the constant input ``x0 = 1`` (exposed as ``.w0``); with
    ``activation="identity"`` this *is* the linear model ``f(x) = w0 + w1 x1 + ... + wd xd``.
    ``out_features`` > 1 gives a layer of independent perceptrons sharing the input.
    """

    layer_count = 1

    def __init__(self, in_features: int, activation: str = "step", out_features: int = 1,
                 init_name: str = "default") -> None:
        super().__init__()
        self.activation_name = activation
        self.activation = F.get_activation(activation)
        self.linear = Linear(in_features, out_features, init_name=init_name)
        self.linear.layer_count = 0  # the perceptron itself is the one layer

    @property
    def w0(self) -> Tensor:
        """The bias: the weight of the constant input x0 = 1."""
        return self.linear.bias

    @property
    def weights(self) -> Tensor:
        """All d+1 weights ``[w0, w1, ..., wd]`` per perceptron, shape ``(out, d + 1)``."""
        xp = self.linear.weight.xp
        return Tensor(xp.concatenate([self.linear.bias.data[:, None], self.linear.weight.data], axis=1))

    def pre_activation(self, x: Tensor) -> Tensor:
        """The weighted sum ``w . [1, x]`` before the activation (the logits)."""
        return self.linear(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.linear(x))

    def extra_repr(self) -> str:
        return f"d={self.linear.in_features}, activation={self.activation_name!r}"
