"""Fused training-step ops on raw arrays: the specs (references) of ``kernels/fused.cu``.

- ``sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize) -> buf``:
  PyTorch's SGD update of ``p`` in place; ``buf`` is the momentum buffer (updated in place, or
  created at the first step when ``buf is None``; ``None`` without momentum).
- ``relu``: ``forward(x) -> (y, state)`` and ``backward(state, gy) -> gx``.
- ``cross_entropy``: log-softmax + negative log-likelihood of ``(M, C)`` logits and ``(M,)``
  int64 labels with optional class weights, ``ignore_index``, label smoothing and a reduction,
  as PyTorch; ``forward(...) -> (loss, state)``, ``backward(gy, state) -> gx``. Labels outside
  ``[0, C)`` (not ignored) give NaN rows (the CuPy path cannot raise without a host sync; the
  NumPy path checks them before).

The same functions run on NumPy (``numpy-ref``) and CuPy (``cupy``) arrays.
"""

from __future__ import annotations

from typing import Any

import numpy

from gpunet.backend import get_array_module
from gpunet.ops import registry

Array = Any
REDUCTIONS = ("none", "sum", "mean")
#: The dtypes the fused kernels are compiled for; other dtypes (float16) run the reference.
KERNEL_DTYPES = ("float32", "float64")


def lookup(op: str, x: Array) -> Any:
    """The registry's implementation of ``op`` for arrays like ``x`` (the ``cupy`` reference for
    CuPy dtypes the kernels lack)."""
    device = registry.device_of(x)
    if device == "cupy" and x.dtype.name not in KERNEL_DTYPES:
        return registry.get(op, "cupy").load()
    return registry.lookup(op, device)


def sgd_step(p: Array, grad: Array, buf: Array | None, lr: float, momentum: float, dampening: float,
             weight_decay: float, nesterov: bool, maximize: bool) -> Array | None:
    """``d = ±g + weight_decay p``; ``buf = momentum buf + (1 - dampening) d`` (``d`` at the
    first step); ``d = d + momentum buf`` (Nesterov) or ``buf``; ``p -= lr d``. Returns ``buf``."""
    d = -grad if maximize else grad
    if weight_decay:
        d = d + weight_decay * p
    if momentum:
        if buf is None:
            buf = d.copy()
        else:
            buf *= momentum
            buf += d if dampening == 0 else (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    p -= lr * d
    return buf


class ReluReference:
    """``max(x, 0)``; the gradient passes where ``x > 0`` (0 at 0, as PyTorch). The state is
    that mask."""

    def forward(self, x: Array) -> tuple[Array, Any]:
        mask = x > 0
        return x * mask, mask

    def backward(self, state: Any, gy: Array) -> Array:
        return gy * state


def log_softmax_rows(x: Array) -> Array:
    """Numerically stable log-softmax over axis 1."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))


def check_reduction(op: str, reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: expected reduction in {REDUCTIONS}, got {reduction!r}")
    return reduction


def nll_rows_forward(logp: Array, labels: Array, weight: Array | None, ignore_index: int, eps: float,
                     reduction: str) -> tuple[Array, Any]:
    """Per-row ``(1 - eps) w[t] (-logp[t]) + eps / C sum_c w_c (-logp[c])`` (0 where ignored),
    reduced; ``mean`` divides by the sum of ``w[t]`` over the rows kept (PyTorch's rule)."""
    xp = get_array_module(logp)
    m, classes = logp.shape
    keep = labels != ignore_index
    gather = xp.where(keep, labels, 0).clip(0, classes - 1)
    w_row = (weight[gather] if weight is not None else xp.ones(m, dtype=logp.dtype)) * keep
    loss = (1 - eps) * w_row * -logp[xp.arange(m), gather]
    if eps:
        w_all = weight if weight is not None else 1
        loss = loss + (eps / classes) * (-(logp * w_all).sum(axis=1)) * keep
    if xp is not numpy:  # NumPy callers raised on bad labels already
        invalid = ((labels < 0) | (labels >= classes)) & keep
        loss = xp.where(invalid, numpy.nan, loss)  # a Python scalar: no host-to-device copy
    denom = w_row.sum() if reduction == "mean" else None
    if reduction == "sum":
        out = loss.sum()
    elif reduction == "mean":
        out = loss.sum() / denom
    else:
        out = loss
    return out, (gather, w_row, keep, denom, weight, eps, reduction, logp.shape)


def nll_rows_backward(gy: Array, state: Any) -> Array:
    """The gradient of :func:`nll_rows_forward` with respect to ``logp``."""
    gather, w_row, keep, denom, weight, eps, reduction, (m, classes) = state
    xp = get_array_module(w_row)
    if reduction == "none":
        s = gy.reshape(-1)
    else:
        s = xp.broadcast_to(gy / denom if denom is not None else gy, (m,))
    g = xp.zeros((m, classes), dtype=w_row.dtype)
    if eps:
        w_all = weight if weight is not None else xp.ones(classes, dtype=w_row.dtype)
        g -= (eps / classes) * (s * keep)[:, None] * w_all
    g[xp.arange(m), gather] -= (1 - eps) * w_row * s
    return g


class CrossEntropyReference:
    """Log-softmax then :func:`nll_rows_forward`; the state keeps ``logp``."""

    def forward(self, x: Array, labels: Array, weight: Array | None, ignore_index: int, eps: float,
                reduction: str) -> tuple[Array, Any]:
        logp = log_softmax_rows(x)
        loss, state = nll_rows_forward(logp, labels, weight, ignore_index, eps,
                                       check_reduction("cross_entropy", reduction))
        return loss, (logp, state)

    def backward(self, gy: Array, state: Any) -> Array:
        logp, rows = state
        g = nll_rows_backward(gy, rows)
        return g - get_array_module(g).exp(logp) * g.sum(axis=1, keepdims=True)


RELU_REFERENCE = ReluReference()
CROSS_ENTROPY_REFERENCE = CrossEntropyReference()
