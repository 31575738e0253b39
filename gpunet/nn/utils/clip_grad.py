"""Gradient clipping, PyTorch's ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``.

Both work on the raw ``.grad`` arrays in place, on their device. ``clip_grad_norm_`` never reads
the norm back to the host (the scale is ``min(1, max_norm / (norm + 1e-6))`` computed on the
device) unless ``error_if_nonfinite=True`` asks it to check the norm, which is one host sync.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Tensor


def _grads(parameters: Tensor | Iterable[Tensor], op: str) -> list[Any]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: parameters[{i}] must be a Tensor, got {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad)
    return grads


def _real(op: str, name: str, value: Any, allow_inf: bool = False) -> float:
    if isinstance(value, (bool, numpy.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise ValueError(f"{op}: {name} must be a finite number, got {value!r}")
    return number


def total_norm(grads: list[Any], norm_type: float) -> Any:
    """The ``norm_type``-norm of all ``grads`` together, as a 0-d device array (float64 accumulation)."""
    xp = backend.get_array_module(grads[0])
    if math.isinf(norm_type):
        return xp.max(xp.stack([xp.abs(g).max().astype("float64") for g in grads]))
    if norm_type == 2:
        flat = (g.astype("float64").ravel() for g in grads)
        parts = [xp.vdot(f, f) for f in flat]
        return xp.sqrt(xp.sum(xp.stack(parts)))
    parts = [(xp.abs(g.astype("float64")) ** norm_type).sum() for g in grads]
    return xp.sum(xp.stack(parts)) ** (1.0 / norm_type)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale the gradients so their joint ``norm_type``-norm is at most ``max_norm``.

    Returns the norm before clipping as a 0-d Tensor on the gradients' device (``float(norm)``
    or ``norm.item()`` reads it back). ``foreach`` is accepted for PyTorch compatibility.
    """
    op = "clip_grad_norm_"
    max_norm = _real(op, "max_norm", max_norm)
    norm_type = _real(op, "norm_type", norm_type, allow_inf=True)
    if max_norm < 0:
        raise ValueError(f"{op}: max_norm must be >= 0, got {max_norm}")
    if norm_type <= 0:
        raise ValueError(f"{op}: norm_type must be > 0 (or inf), got {norm_type}")
    grads = _grads(parameters, op)
    if not grads:
        return Tensor(backend.xp().zeros((), dtype="float32"))
    xp = backend.get_array_module(grads[0])
    norm = total_norm(grads, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(norm)):  # the one host sync, only when asked
        raise ValueError(f"{op}: the total norm of order {norm_type} of the gradients is non-finite ({float(norm)}), "
                         f"so it cannot be clipped; pass error_if_nonfinite=False to scale anyway")
    coef = xp.minimum(max_norm / (norm + 1e-6), 1.0)
    for g in grads:
        g *= coef.astype(g.dtype)
    dtype = numpy.result_type(*(g.dtype for g in grads), numpy.float32)
    return Tensor(norm.astype(dtype))


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place."""
    op = "clip_grad_value_"
    clip_value = _real(op, "clip_value", clip_value)
    if clip_value < 0:
        raise ValueError(f"{op}: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters, op):
        xp = backend.get_array_module(g)
        xp.clip(g, -clip_value, clip_value, out=g)
