"""Normalisation: ``batch_norm`` and ``layer_norm`` (PyTorch's signatures and statistics).

``batch_norm`` normalises over every axis but the channel axis 1. In training it uses the batch
statistics (the biased variance) and, when running buffers are given, updates them in place:
``running = (1 - momentum) * running + momentum * batch`` with the *unbiased* batch variance for
``running_var``, as PyTorch. In evaluation it uses the running statistics.
``layer_norm`` normalises over the last ``len(normalized_shape)`` axes.
"""

from __future__ import annotations

import numbers
from typing import Any

from gpunet.autograd import Function, OpError, Tensor


def _floating(op: str, x: Any) -> None:
    if x.dtype.kind != "f":
        raise OpError(f"{op}: expected a floating input, got dtype {x.dtype}; convert it with x.float()")


def _affine_inputs(op: str, x: Any, weight: Any, bias: Any, shape: tuple[int, ...]) -> None:
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            if p.shape != shape:
                raise OpError(f"{op}: expected {name} of shape {shape}, got {p.shape}")
            if p.dtype != x.dtype:
                raise OpError(f"{op}: expected {name} of the input's dtype {x.dtype}, got {p.dtype}")


def _normalized_backward(gxhat, xhat, invstd, axes):
    """d/dx of ``xhat = (x - mean) * invstd`` with batch statistics over ``axes``."""
    return invstd * (gxhat - gxhat.mean(axis=axes, keepdims=True)
                     - xhat * (gxhat * xhat).mean(axis=axes, keepdims=True))


class BatchNorm(Function):
    """Inputs ``x, [weight], [bias]``; ``running_mean``/``running_var`` are raw arrays (not
    differentiated): used when not ``training``, and updated in place by a training forward
    (``momentum``; the unbiased batch variance for ``running_var``), as PyTorch's kernel does."""

    def __init__(self, training: bool, eps: float, running_mean: Any = None, running_var: Any = None,
                 has_weight: bool = False, has_bias: bool = False, momentum: float = 0.1) -> None:
        self.training, self.eps, self.momentum = training, eps, momentum
        self.running_mean, self.running_var = running_mean, running_var
        self.has_weight, self.has_bias = has_weight, has_bias

    def forward(self, x, *params):
        _floating("batch_norm", x)
        if x.ndim < 2:
            raise OpError(f"batch_norm: expected input (N, C) or (N, C, ...), got shape {x.shape}")
        params = list(params)
        weight = params.pop(0) if self.has_weight else None
        bias = params.pop(0) if self.has_bias else None
        channels = x.shape[1]
        _affine_inputs("batch_norm", x, weight, bias, (channels,))
        axes = (0, *range(2, x.ndim))
        view = (1, channels) + (1,) * (x.ndim - 2)
        count = x.size // max(channels, 1)
        if self.training:
            if count <= 1:
                raise OpError(f"batch_norm: expected more than 1 value per channel when training, got input "
                              f"of shape {x.shape}")
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            if self.running_mean is not None and self.running_var is not None:
                self._update_running(mean, var, count)
        else:
            if self.running_mean is None or self.running_var is None:
                raise OpError("batch_norm: evaluation needs running_mean and running_var (or training=True)")
            for name, r in (("running_mean", self.running_mean), ("running_var", self.running_var)):
                if r.shape != (channels,):
                    raise OpError(f"batch_norm: expected {name} of shape ({channels},), got {r.shape}")
            mean, var = self.running_mean.astype(x.dtype, copy=False), self.running_var.astype(x.dtype, copy=False)
        invstd = (1.0 / self.xp.sqrt(var + x.dtype.type(self.eps))).astype(x.dtype, copy=False).reshape(view)
        xhat = (x - mean.reshape(view)) * invstd
        y = xhat
        if weight is not None:
            y = y * weight.reshape(view)
        if bias is not None:
            y = y + bias.reshape(view)
        self.save_for_backward(xhat, invstd, weight, axes, view)
        return y

    def _update_running(self, mean, var, count):
        m = self.momentum
        rm, rv = self.running_mean, self.running_var
        for name, r in (("running_mean", rm), ("running_var", rv)):
            if r.shape != mean.shape:
                raise OpError(f"batch_norm: expected {name} of shape {mean.shape}, got {r.shape}")
        rm *= 1 - m
        rm += (m * mean).astype(rm.dtype, copy=False)
        rv *= 1 - m
        rv += (m * var * (count / (count - 1))).astype(rv.dtype, copy=False)

    def backward(self, gy):
        xhat, invstd, weight, axes, view = self.saved
        need = list(self.needs_input_grad)
        gxhat = gy * weight.reshape(view) if weight is not None else gy
        gx = None
        if need[0]:
            gx = _normalized_backward(gxhat, xhat, invstd, axes) if self.training else gxhat * invstd
        out = [gx]
        if self.has_weight:
            out.append((gy * xhat).sum(axis=axes) if need[len(out)] else None)
        if self.has_bias:
            out.append(gy.sum(axis=axes) if need[len(out)] else None)
        return tuple(out) if len(out) > 1 else out[0]


def _raw(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,  # noqa: A002
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """PyTorch's ``F.batch_norm``: batch statistics when ``training`` (updating the running
    buffers in place when given), the running ones otherwise."""
    func = BatchNorm(bool(training), float(eps), _raw(running_mean), _raw(running_var),
                     weight is not None, bias is not None, float(momentum))
    return func(input, *(p for p in (weight, bias) if p is not None))


class LayerNorm(Function):
    """Inputs ``x, [weight], [bias]``; normalises over the last ``len(shape)`` axes."""

    def __init__(self, shape: tuple[int, ...], eps: float, has_weight: bool, has_bias: bool) -> None:
        self.shape, self.eps, self.has_weight, self.has_bias = shape, eps, has_weight, has_bias

    def forward(self, x, *params):
        _floating("layer_norm", x)
        k = len(self.shape)
        if x.ndim < k or tuple(x.shape[x.ndim - k:]) != self.shape:
            raise OpError(f"layer_norm: expected input with trailing shape {self.shape}, got {x.shape}")
        params = list(params)
        weight = params.pop(0) if self.has_weight else None
        bias = params.pop(0) if self.has_bias else None
        _affine_inputs("layer_norm", x, weight, bias, self.shape)
        axes = tuple(range(x.ndim - k, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        invstd = (1.0 / self.xp.sqrt(var + x.dtype.type(self.eps))).astype(x.dtype, copy=False)
        xhat = (x - mean) * invstd
        y = xhat * weight if weight is not None else xhat
        if bias is not None:
            y = y + bias
        self.save_for_backward(xhat, invstd, weight, axes)
        return y

    def backward(self, gy):
        xhat, invstd, weight, axes = self.saved
        need = self.needs_input_grad
        lead = tuple(range(gy.ndim - len(self.shape)))
        gxhat = gy * weight if weight is not None else gy
        out = [_normalized_backward(gxhat, xhat, invstd, axes) if need[0] else None]
        if self.has_weight:
            out.append((gy * xhat).sum(axis=lead) if need[len(out)] else None)
        if self.has_bias:
            out.append(gy.sum(axis=lead) if need[len(out)] else None)
        return tuple(out) if len(out) > 1 else out[0]


def shape_argument(owner: str, value: Any) -> tuple[int, ...]:
    items = (value,) if isinstance(value, numbers.Integral) else tuple(value)
    if not items or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in items):
        raise OpError(f"{owner}: expected normalized_shape as an int or a tuple of ints >= 1, got {value!r}")
    return tuple(int(v) for v in items)


def layer_norm(input: Tensor, normalized_shape: int | tuple[int, ...], weight: Tensor | None = None,  # noqa: A002
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """PyTorch's ``F.layer_norm`` over the trailing ``normalized_shape`` axes."""
    shape = shape_argument("layer_norm", normalized_shape)
    func = LayerNorm(shape, float(eps), weight is not None, bias is not None)
    return func(input, *(p for p in (weight, bias) if p is not None))
