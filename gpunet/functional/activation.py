"""Activation functions: identity, step, sigmoid, tanh, relu, softmax, log_softmax."""

from __future__ import annotations

from gpunet.autograd import Function, OpError, Tensor
from gpunet.backend import get_array_module


class Identity(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


class Step(Function):
    """Heaviside step ``1 if x > 0 else 0`` (the classic perceptron's); its derivative is 0."""

    def forward(self, x):
        return (x > 0).astype(x.dtype)

    def backward(self, gy):
        return self.xp.zeros_like(gy)


class Sigmoid(Function):
    def forward(self, x):
        y = 0.5 * (self.xp.tanh(0.5 * x) + 1)  # overflow-free logistic
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved
        return gy * y * (1 - y)


class Tanh(Function):
    def forward(self, x):
        y = self.xp.tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved
        return gy * (1 - y * y)


class ReLU(Function):
    def forward(self, x):
        mask = x > 0
        self.save_for_backward(mask)
        return x * mask

    def backward(self, gy):
        mask, = self.saved
        return gy * mask


class Softmax(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        shifted = self.xp.exp(x - x.max(axis=self.axis, keepdims=True))
        y = shifted / shifted.sum(axis=self.axis, keepdims=True)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved
        gx = y * gy
        return gx - y * gx.sum(axis=self.axis, keepdims=True)


class LogSoftmax(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        y = log_softmax_array(x, self.axis)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved
        return gy - self.xp.exp(y) * gy.sum(axis=self.axis, keepdims=True)


def log_softmax_array(x, axis: int):
    """Numerically stable log-softmax of a raw array."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def identity(x: Tensor) -> Tensor:
    return Identity()(x)


def step(x: Tensor) -> Tensor:
    return Step()(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid()(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh()(x)


def relu(x: Tensor) -> Tensor:
    return ReLU()(x)


def softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Softmax along ``dim`` (NumPy alias ``axis``; default the last dim)."""
    return Softmax(softmax_dim("softmax", x, dim, axis))(x)


def log_softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Log-softmax along ``dim`` (NumPy alias ``axis``; default the last dim)."""
    return LogSoftmax(softmax_dim("log_softmax", x, dim, axis))(x)


def softmax_dim(op: str, x: Tensor, dim: int | None, axis: int | None) -> int:
    """The one dim of a softmax: ``dim`` or its alias ``axis`` (default -1), checked against ``x``."""
    if dim is not None and axis is not None:
        raise OpError(f"{op}: expected dim= or its alias axis=, got both (dim={dim!r}, axis={axis!r})")
    d = -1 if dim is None and axis is None else dim if dim is not None else axis
    n = max(x.ndim, 1)
    if isinstance(d, bool) or not isinstance(d, int) or not -n <= d < n:
        raise OpError(f"{op}: expected an int dim in [{-n}, {n}) for shape {x.shape}, got {d!r}")
    return d


ACTIVATIONS = {"identity": identity, "step": step, "sigmoid": sigmoid, "tanh": tanh, "relu": relu}


def get_activation(name: str):
    """The activation function called ``name``; raises with the valid names otherwise."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}") from None
