"""PyTorch's top-level tensor functions (``torch.flatten(x, 1)``, ``torch.max(x, 1)``,
``torch.exp(x)`` ...) as ``gpunet.<name>``: each calls the Tensor method of the same name, so
the semantics are the method's (``max(x, dim)`` gives ``(values, indices)``); ``max``/``min``
of two tensors are the elementwise ``maximum``/``minimum``."""

from __future__ import annotations

from typing import Any

from gpunet.autograd import OpError, Tensor
from gpunet.functional import math

_METHODS = ("flatten", "argmax", "argmin", "sum", "mean", "std", "var", "exp", "log", "sqrt", "abs", "tanh",
            "sigmoid", "relu", "softmax", "log_softmax", "matmul", "clamp", "unsqueeze", "squeeze", "reshape",
            "transpose", "permute", "clone", "masked_fill", "eq", "ne", "lt", "le", "gt", "ge", "pow")


def _method(name: str) -> Any:
    def fn(input: Tensor, *args: Any, **kwargs: Any) -> Any:  # noqa: A002 - PyTorch's name
        if not isinstance(input, Tensor):
            raise OpError(f"{name}: expected a Tensor as the first argument, got {type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``gpunet.{name}(t, ...)`` is ``t.{name}(...)`` (PyTorch's ``torch.{name}``)."
    return fn


def maximum(a: Tensor, b: Any) -> Tensor:
    """Elementwise maximum (the gradient goes to the larger; ties to ``a``)."""
    return math.where(a >= b, a, b)


def minimum(a: Tensor, b: Any) -> Tensor:
    """Elementwise minimum (the gradient goes to the smaller; ties to ``a``)."""
    return math.where(a <= b, a, b)


def max(input: Tensor, *args: Any, **kwargs: Any) -> Any:  # noqa: A001,A002
    """``max(t)``, ``max(t, dim)`` → ``(values, indices)``, or ``max(t, other)`` elementwise."""
    if args and isinstance(args[0], Tensor):
        return maximum(input, args[0])
    return _method("max")(input, *args, **kwargs)


def min(input: Tensor, *args: Any, **kwargs: Any) -> Any:  # noqa: A001,A002
    """``min(t)``, ``min(t, dim)`` → ``(values, indices)``, or ``min(t, other)`` elementwise."""
    if args and isinstance(args[0], Tensor):
        return minimum(input, args[0])
    return _method("min")(input, *args, **kwargs)


globals().update({name: _method(name) for name in _METHODS})
__all__ = [*_METHODS, "max", "min", "maximum", "minimum"]
