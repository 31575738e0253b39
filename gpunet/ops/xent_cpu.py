"""The NumPy fast path (``numpy-fast``) of ``cross_entropy``: one numba pass each way.

The reference (:class:`gpunet.ops.fused.CrossEntropyReference`) is about twenty small NumPy
calls per step (log-softmax, gathers, masks, the smoothing term), each a few microseconds: on a
CPU training step that is serial time the other cores wait through. Here the forward writes
``logp`` and the per-row losses in one pass over the rows, and the backward writes the input
gradient in one pass, with the reference's formulas (per-row sums run in order, so float32
results differ from NumPy's pairwise sums in the last bits). The reduction stays in NumPy, so
the loss has the reference's type. Dtypes other than float32/float64 run the reference.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy

from gpunet.ops import fused

Array = Any


@numba.njit(cache=True, nogil=True)
def _forward_rows(x, labels, weight, has_weight, ignore_index, keep_share, smooth, logp, loss,
                  w_row):  # pragma: no cover - compiled
    """``logp`` = log-softmax of each row; ``loss[i] = keep_share w[t] (-logp[t]) + smooth sum_c
    w_c (-logp[c])`` (``keep_share = 1 - eps``, ``smooth = eps / C``; 0 where ignored);
    ``w_row[i] = w[t]`` (0 where ignored)."""
    m, classes = x.shape
    one = x.dtype.type(1)
    for i in range(m):
        top = x[i, 0]
        for c in range(1, classes):
            if x[i, c] > top:
                top = x[i, c]
        total = x.dtype.type(0)
        for c in range(classes):
            total += numpy.exp(x[i, c] - top)
        lse = numpy.log(total)
        for c in range(classes):
            logp[i, c] = (x[i, c] - top) - lse
        t = labels[i]
        if t == ignore_index:
            loss[i] = 0
            w_row[i] = 0
            continue
        t = min(max(t, 0), classes - 1)
        w = weight[t] if has_weight else one
        w_row[i] = w
        value = keep_share * w * -logp[i, t]
        if smooth != 0:
            acc = x.dtype.type(0)
            for c in range(classes):
                acc += logp[i, c] * (weight[c] if has_weight else one)
            value += smooth * -acc
        loss[i] = value


@numba.njit(cache=True, nogil=True)
def _backward_rows(logp, labels, weight, has_weight, ignore_index, keep_share, smooth, scale,
                   g):  # pragma: no cover - compiled
    """``g[i] = nll'[i] - softmax[i] * sum(nll'[i])`` with ``nll'[i, c] = -smooth s_i w_c -
    (c == t_i) keep_share w[t_i] s_i`` for the kept rows (``s_i = scale[i]``); 0 for ignored rows."""
    m, classes = logp.shape
    one = logp.dtype.type(1)
    w_sum = logp.dtype.type(0)
    for c in range(classes):
        w_sum += weight[c] if has_weight else one
    for i in range(m):
        t = labels[i]
        if t == ignore_index:
            for c in range(classes):
                g[i, c] = 0
            continue
        t = min(max(t, 0), classes - 1)
        s = scale[i]
        hit = keep_share * (weight[t] if has_weight else one) * s
        row_sum = -smooth * s * w_sum - hit
        for c in range(classes):
            g[i, c] = -smooth * s * (weight[c] if has_weight else one) - numpy.exp(logp[i, c]) * row_sum
        g[i, t] -= hit


class CrossEntropyCompiled:
    """``cross_entropy``'s ``numpy-fast`` implementation (the reference's interface)."""

    def forward(self, x: Array, labels: Array, weight: Array | None, ignore_index: int, eps: float,
                reduction: str) -> tuple[Array, Any]:
        reduction = fused.check_reduction("cross_entropy", reduction)
        if x.dtype.char not in "fd" or x.ndim != 2 or (weight is not None and weight.dtype != x.dtype):
            loss, state = fused.CROSS_ENTROPY_REFERENCE.forward(x, labels, weight, ignore_index, eps, reduction)
            return loss, ("reference", state)
        x = numpy.ascontiguousarray(x)
        m = x.shape[0]
        logp, loss, w_row = numpy.empty_like(x), numpy.empty(m, x.dtype), numpy.empty(m, x.dtype)
        has_weight = weight is not None
        w = numpy.ascontiguousarray(weight) if has_weight else x[0, :0]
        cast = x.dtype.type  # the reference's Python-float factors, rounded as NumPy rounds them
        factors = cast(1 - eps), cast(eps / x.shape[1])
        labels = numpy.ascontiguousarray(labels, dtype=numpy.int64)
        _forward_rows(x, labels, w, has_weight, ignore_index, *factors, logp, loss, w_row)
        denom = w_row.sum() if reduction == "mean" else None
        out = loss.sum() if reduction == "sum" else loss.sum() / denom if reduction == "mean" else loss
        return out, ("compiled", logp, labels, w, has_weight, ignore_index, factors, denom, reduction)

    def backward(self, gy: Array, state: Any) -> Array:
        if state[0] == "reference":
            return fused.CROSS_ENTROPY_REFERENCE.backward(gy, state[1])
        _, logp, labels, w, has_weight, ignore_index, factors, denom, reduction = state
        m = logp.shape[0]
        if reduction == "none":
            scale = numpy.ascontiguousarray(gy, dtype=logp.dtype).reshape(-1)
        else:
            scale = numpy.full(m, gy / denom if denom is not None else gy, dtype=logp.dtype)
        g = numpy.empty_like(logp)
        _backward_rows(logp, labels, w, has_weight, ignore_index, *factors, scale, g)
        return g


COMPILED = CrossEntropyCompiled()
