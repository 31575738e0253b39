"""Activation functions: identity, step, sigmoid, tanh, relu, leaky_relu, gelu, softmax,
log_softmax."""

from __future__ import annotations

import math
from typing import Any

import numpy

from gpunet.autograd import Function, OpError, Tensor
from gpunet.backend import get_array_module
from gpunet.ops import fused


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
    """One fused kernel each way on a GPU (``gpunet.ops.fused``)."""

    def forward(self, x):
        impl = fused.lookup("relu", x)
        y, state = impl.forward(x)
        self.save_for_backward(impl, state)
        return y

    def backward(self, gy):
        impl, state = self.saved
        return impl.backward(state, gy)


class LeakyReLU(Function):
    """``x if x > 0 else negative_slope * x`` (the gradient at 0 is ``negative_slope``, as PyTorch)."""

    def __init__(self, negative_slope: float) -> None:
        self.negative_slope = negative_slope

    def forward(self, x):
        positive = x > 0
        self.save_for_backward(positive)
        return self.xp.where(positive, x, x * x.dtype.type(self.negative_slope))

    def backward(self, gy):
        positive, = self.saved
        return self.xp.where(positive, gy, gy * gy.dtype.type(self.negative_slope))


def erf(x: Any) -> Any:
    """The error function of a raw floating array, on its own backend and dtype."""
    xp = get_array_module(x)
    if xp is not numpy:
        from cupyx.scipy import special

        return special.erf(x)
    try:
        from scipy import special
    except ImportError:  # scipy is optional: the exact (slower) per-element math.erf
        return numpy.vectorize(math.erf, otypes=[x.dtype])(x).astype(x.dtype, copy=False)
    return special.erf(x).astype(x.dtype, copy=False)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELU(Function):
    """``x * Phi(x)`` with the normal CDF ``Phi`` (``approximate="none"``), or PyTorch's tanh
    form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (``approximate="tanh"``)."""

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise OpError(f"gelu: expected approximate 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        xp = self.xp
        if self.approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
            self.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        cdf = 0.5 * (1 + erf(x * _INV_SQRT_2))
        self.save_for_backward(x, cdf)
        return x * cdf

    def backward(self, gy):
        x, aux = self.saved
        if self.approximate == "tanh":
            t = aux
            inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return gy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner)
        pdf = _INV_SQRT_2PI * self.xp.exp(-0.5 * x * x)
        return gy * (aux + x * pdf)


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


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU(float(negative_slope))(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit; ``approximate="tanh"`` for the tanh approximation."""
    return GELU(approximate)(x)


def _dim(op: str, x: Tensor, dim: int | None, axis: int | None) -> int:
    """The one dim of a softmax: ``dim`` or its NumPy alias ``axis`` (default -1), checked against ``x``."""
    if dim is not None and axis is not None:
        raise OpError(f"{op}: expected dim= or its alias axis=, got both (dim={dim!r}, axis={axis!r})")
    chosen = dim if dim is not None else (axis if axis is not None else -1)
    rank = max(x.ndim, 1)
    if isinstance(chosen, bool) or not isinstance(chosen, (int, numpy.integer)) or not -rank <= chosen < rank:
        raise OpError(f"{op}: expected an int dim in [{-rank}, {rank}) for shape {x.shape}, got {chosen!r}")
    return int(chosen)


def softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Softmax along ``dim`` (``axis=`` is NumPy's alias); the last axis when neither is given."""
    return Softmax(_dim("softmax", x, dim, axis))(x)


def log_softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Log-softmax along ``dim`` (``axis=`` alias); the last axis when neither is given."""
    return LogSoftmax(_dim("log_softmax", x, dim, axis))(x)


ACTIVATIONS = {"identity": identity, "step": step, "sigmoid": sigmoid, "tanh": tanh, "relu": relu,
               "leaky_relu": leaky_relu, "gelu": gelu}


def get_activation(name: str):
    """The activation function called ``name``; raises with the valid names otherwise."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}") from None
