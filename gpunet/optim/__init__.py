"""Optimizers (PyTorch's names and update rules), learning-rate schedulers and gradient clipping.

``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad`` take a list of parameters or a list of
parameter groups (dicts with ``"params"`` and per-group options). Updates run on the raw arrays
in place on the parameters' device, with no host sync; ``state_dict``/``load_state_dict``
capture everything an exact resume needs (see :mod:`gpunet.optim.optimizer`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from gpunet import backend
from gpunet.autograd import Tensor
from gpunet.optim import lr_scheduler
from gpunet.optim.adagrad import Adagrad
from gpunet.optim.adam import Adam, AdamW
from gpunet.optim.optimizer import Optimizer
from gpunet.optim.rmsprop import RMSprop
from gpunet.optim.sgd import SGD

# the optimizers a training recipe can name (``Settings.optimizer``)
OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop,
                                          "adagrad": Adagrad}


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients so their global L2 norm is at most ``max_norm``; return the norm before.

    gpunet's original form (a float back, one host sync); :func:`clip_grad_norm_on_device` is the
    same without the sync, :func:`gpunet.nn.utils.clip_grad_norm_` is PyTorch's (a 0-d Tensor back).
    """
    norm = clip_grad_norm_on_device(params, max_norm)
    return 0.0 if norm is None else float(norm)  # the one host sync


def clip_grad_norm_on_device(params: Iterable[Tensor], max_norm: float) -> Any:
    """:func:`clip_grad_norm` with no host sync: the scale is computed on the gradients' device.

    Returns the norm before clipping as a 0-d float64 array there (``None`` when no parameter has
    a gradient). Gradients are scaled by ``max_norm / (norm + 1e-6)`` when ``norm > max_norm > 0``
    (a NaN norm scales nothing), in each gradient's dtype, as the float form always did.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not math.isfinite(max_norm) \
            or max_norm < 0:
        raise ValueError(f"clip_grad_norm: max_norm must be a finite number >= 0, got {max_norm!r}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    xp = backend.get_array_module(grads[0])
    norm = xp.sqrt(sum((g.astype("float64") ** 2).sum() for g in grads))
    if max_norm > 0:
        factor = xp.where(norm > max_norm, max_norm / (norm + 1e-6), 1.0)
        by_dtype: dict[Any, Any] = {}
        for g in grads:
            if g.dtype not in by_dtype:
                by_dtype[g.dtype] = factor.astype(g.dtype)
            g *= by_dtype[g.dtype]
    return norm


__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "clip_grad_norm",
           "clip_grad_norm_on_device", "lr_scheduler"]
