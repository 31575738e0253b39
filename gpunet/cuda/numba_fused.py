"""numba.cuda counterparts of ``kernels/fused.cu``: the SGD update, ReLU and cross-entropy.

The same design (one thread per element or per row, a one-block fixed-order reduction) and the
same semantics (:mod:`gpunet.ops.fused`). The launcher classes validate through
:mod:`gpunet.cuda.numba_ops` (CuPy arrays, float32/float64, shapes; non-contiguous inputs
copied), allocate with CuPy and launch on CuPy's current stream.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from numba import cuda, from_dtype

from gpunet.cuda import numba_ops as nb
from gpunet.ops.fused import check_reduction

Array = Any
THREADS = 256
MAX_BLOCKS = 4096
KERNELS = ("sgd_step", "relu_fwd", "relu_bwd", "xent_fwd", "xent_reduce", "xent_bwd")


@cache
def get_kernels(dtype: str) -> dict[str, Any]:
    """The fused kernels for ``dtype`` (``"float32"``/``"float64"``), compiled lazily."""
    t = np.dtype(dtype).type
    zero, one, nan = t(0), t(1), t(np.nan)
    shared_type = from_dtype(np.dtype(dtype))

    @cuda.jit
    def sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, flags):
        lr, momentum, dampening, weight_decay = t(lr), t(momentum), t(dampening), t(weight_decay)
        nesterov, maximize, first = flags & 1, flags & 2, flags & 4
        for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
            d = -grad[i] if maximize else grad[i]
            if weight_decay != zero:
                d = d + weight_decay * p[i]
            if momentum != zero:
                if first:
                    b = d
                else:
                    b = momentum * buf[i] + (d if dampening == zero else (one - dampening) * d)
                buf[i] = b
                d = d + momentum * b if nesterov else b
            p[i] = p[i] - lr * d

    @cuda.jit
    def relu_fwd(x, y):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            y[i] = x[i] if x[i] > zero else zero

    @cuda.jit
    def relu_bwd(y, gy, gx):
        for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            gx[i] = gy[i] if y[i] > zero else zero

    @cuda.jit(device=True, inline=True)
    def gather_index(label, c, ignore_index):
        if label == ignore_index:
            return 0, False
        return (0 if label < 0 else (c - 1 if label >= c else label)), True

    @cuda.jit
    def xent_fwd(x, labels, weight, logp, loss, w_row, ignore_index, has_weight, eps):
        m, c = x.shape
        eps = t(eps)
        for row in range(cuda.grid(1), m, cuda.gridsize(1)):
            top = x[row, 0]
            for j in range(1, c):
                if x[row, j] > top or x[row, j] != x[row, j]:
                    top = x[row, j]
            total = zero
            for j in range(c):
                total += math.exp(x[row, j] - top)
            lse = math.log(total)
            smooth = zero
            for j in range(c):
                logp[row, j] = (x[row, j] - top) - lse
                smooth += (weight[j] if has_weight else one) * logp[row, j]
            label = labels[row]
            g, keep = gather_index(label, c, ignore_index)
            wr = (weight[g] if has_weight else one) if keep else zero
            value = (one - eps) * wr * -logp[row, g]
            if eps != zero:
                value = value + (eps / t(c)) * -smooth * (one if keep else zero)
            if keep and (label < 0 or label >= c):
                value = nan
            loss[row] = value
            w_row[row] = wr

    @cuda.jit
    def xent_reduce(loss, w_row, out, denom, mean):
        part = cuda.shared.array((2, THREADS), shared_type)
        tid = cuda.threadIdx.x
        s, w = zero, zero
        for row in range(tid, loss.size, cuda.blockDim.x):
            s += loss[row]
            w += w_row[row]
        part[0, tid] = s
        part[1, tid] = w
        cuda.syncthreads()
        half = THREADS // 2
        while half > 0:
            if tid < half:
                part[0, tid] += part[0, tid + half]
                part[1, tid] += part[1, tid + half]
            cuda.syncthreads()
            half //= 2
        if tid == 0:
            out[0] = part[0, 0] / part[1, 0] if mean else part[0, 0]
            denom[0] = part[1, 0]

    @cuda.jit
    def xent_bwd(gy, denom, logp, labels, w_row, weight, gx, ignore_index, has_weight, reduction, eps):
        m, c = logp.shape
        eps = t(eps)
        for row in range(cuda.grid(1), m, cuda.gridsize(1)):
            s = gy[row] if reduction == 0 else (gy[0] / denom[0] if reduction == 2 else gy[0])
            g, keep = gather_index(labels[row], c, ignore_index)
            spread = (eps / t(c)) * s if keep else zero
            hit = (one - eps) * w_row[row] * s
            weights = t(c)
            if has_weight:
                weights = zero
                for j in range(c):
                    weights += weight[j]
            row_sum = -(spread * weights + hit)
            for j in range(c):
                d = -spread * (weight[j] if has_weight else one)
                if j == g:
                    d -= hit
                gx[row, j] = d - math.exp(logp[row, j]) * row_sum

    return {"sgd_step": sgd_step, "relu_fwd": relu_fwd, "relu_bwd": relu_bwd, "xent_fwd": xent_fwd,
            "xent_reduce": xent_reduce, "xent_bwd": xent_bwd}


class NumbaSgd:
    """``sgd_step`` in one launch per parameter."""

    def __call__(self, p: Array, grad: Array, buf: Array | None, lr: float, momentum: float,
                 dampening: float, weight_decay: float, nesterov: bool, maximize: bool) -> Array | None:
        op = "sgd_step"
        a = {"p": p, "grad": grad} if buf is None else {"p": p, "grad": grad, "buf": buf}
        dtype = nb._check(op, a)
        nb._shapes(op, a, {name: p.shape for name in a})
        if buf is not None and not buf.flags.c_contiguous:
            raise ValueError(f"numba_ops.{op}: expected 'buf' C-contiguous (updated in place), got "
                             f"strides {buf.strides}")
        first = bool(momentum) and buf is None
        if first:
            buf = nb._cupy().empty(p.shape, dtype=dtype)
        target = a["p"]
        flags = int(bool(nesterov)) | 2 * int(bool(maximize)) | 4 * int(bool(first))
        if target.size:
            views = [v.reshape(-1) for v in (target, a["grad"], buf if momentum else a["grad"])]
            get_kernels(dtype)["sgd_step"][_blocks(target.size), THREADS, nb._stream()](
                *(nb._dev(v) for v in views), float(lr), float(momentum), float(dampening),
                float(weight_decay), flags)
        if not p.flags.c_contiguous:
            p[...] = target
        return buf if momentum else None


def _blocks(units: int) -> int:
    return min(MAX_BLOCKS, max(1, -(-units // THREADS)))


class NumbaRelu:
    """ReLU forward and backward, one launch each."""

    def forward(self, x: Array) -> tuple[Array, Array]:
        """``(y, y)``: the backward reads the output (``y > 0`` exactly where ``x > 0``)."""
        a = {"x": x}
        dtype = nb._check("relu", a)
        y = nb._cupy().empty(a["x"].shape, dtype=dtype)
        if y.size:
            get_kernels(dtype)["relu_fwd"][_blocks(y.size), THREADS, nb._stream()](
                nb._dev(a["x"].reshape(-1)), nb._dev(y.reshape(-1)))
        return y, y

    def backward(self, y: Array, gy: Array) -> Array:
        a = {"y": y, "gy": gy}
        dtype = nb._check("relu backward", a)
        nb._shapes("relu backward", a, {"gy": y.shape})
        gx = nb._cupy().empty(y.shape, dtype=dtype)
        if gx.size:
            get_kernels(dtype)["relu_bwd"][_blocks(gx.size), THREADS, nb._stream()](
                *(nb._dev(v.reshape(-1)) for v in (a["y"], a["gy"], gx)))
        return gx


class NumbaCrossEntropy:
    """Log-softmax + NLL: one launch per row pass, one block for the reduction."""

    def forward(self, x: Array, labels: Array, weight: Array | None, ignore_index: int, eps: float,
                reduction: str) -> tuple[Array, Any]:
        op = "cross_entropy"
        check_reduction(op, reduction)
        a = {"x": x} if weight is None else {"x": x, "weight": weight}
        dtype = nb._check(op, a)
        x = a["x"]
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"numba_ops.{op}: expected logits of shape (M, C) with C >= 1, got "
                             f"{tuple(x.shape)}")
        m, c = x.shape
        weight = a.get("weight")
        if weight is not None:
            nb._shapes(op, a, {"weight": (c,)})
        if not nb.is_cupy_array(labels) or labels.dtype.kind not in "iu":
            raise TypeError(f"numba_ops.{op}: expected integer labels as a cupy.ndarray, got "
                            f"{type(labels).__name__} {getattr(labels, 'dtype', '')}")
        if tuple(labels.shape) != (m,):
            raise ValueError(f"numba_ops.{op}: 'labels' has shape {tuple(labels.shape)}, expected ({m},)")
        if labels.dtype == np.uint64:
            labels = labels.clip(0, 2**31 - 1)
        labels = nb._cupy().ascontiguousarray(labels.astype(np.int64, copy=False))
        cp = nb._cupy()
        logp, loss, w_row = cp.empty((m, c), dtype=dtype), cp.empty(m, dtype=dtype), cp.empty(m, dtype=dtype)
        kernels, stream = get_kernels(dtype), nb._stream()
        if m:
            kernels["xent_fwd"][_blocks(m), THREADS, stream](
                nb._dev(x), nb._dev(labels), nb._dev(weight if weight is not None else x[0]),
                nb._dev(logp), nb._dev(loss), nb._dev(w_row), int(ignore_index), int(weight is not None),
                float(eps))
        denom = None
        if reduction != "none":
            out, denom = cp.empty((), dtype=dtype), cp.empty((), dtype=dtype)
            kernels["xent_reduce"][1, THREADS, stream](
                nb._dev(loss), nb._dev(w_row), nb._dev(out.reshape(1)), nb._dev(denom.reshape(1)),
                int(reduction == "mean"))
            loss = out
        return loss, (logp, labels, w_row, weight, denom, int(ignore_index), float(eps), reduction)

    def backward(self, gy: Array, state: Any) -> Array:
        op = "cross_entropy backward"
        logp, labels, w_row, weight, denom, ignore_index, eps, reduction = state
        m, c = logp.shape
        a = {"gy": gy}
        dtype = nb._check(op, a)
        nb._shapes(op, a, {"gy": (m,) if reduction == "none" else ()})
        if dtype != str(logp.dtype):
            raise TypeError(f"numba_ops.{op}: expected gy of dtype {logp.dtype}, got {dtype}")
        gx = nb._cupy().empty((m, c), dtype=dtype)
        if m:
            code = ("none", "sum", "mean").index(reduction)
            gy1 = a["gy"].reshape(-1)
            get_kernels(dtype)["xent_bwd"][_blocks(m), THREADS, nb._stream()](
                nb._dev(gy1), nb._dev(denom.reshape(1) if denom is not None else gy1), nb._dev(logp),
                nb._dev(labels), nb._dev(w_row), nb._dev(weight if weight is not None else logp[0]),
                nb._dev(gx), int(ignore_index), int(weight is not None), code, float(eps))
        return gx


#: The launchers the registry loads (``gpunet.ops.catalog``; probed by ``numba_ops.unavailable_reason``).
OPS: dict[str, Any] = {"sgd_step": NumbaSgd(), "relu": NumbaRelu(), "cross_entropy": NumbaCrossEntropy()}


def launcher(op: str) -> Any:
    """The launcher of fused op ``op`` (the registry's entry)."""
    return OPS[op]
