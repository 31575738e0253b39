"""The NumPy fast path (``numpy-fast``) of conv2d: numba packing kernels around batched BLAS GEMMs.

Method (chosen by measurement, LeNet's conv2 ``x (64, 6, 14, 14)``, ``w (16, 6, 5, 5)``, one
core, CPU time): a direct numba convolution ran the forward in 3.3 ms and a direct numba input
gradient in 4.4 ms; im2col + GEMM runs them in about 0.6 ms each, because OpenBLAS's SGEMM beats
what numba's auto-vectoriser makes of a short, load-bound loop nest. The columns are laid out
**per sample**, ``(N, C*kh*kw, OH, OW)``, and every GEMM is a batched ``np.matmul`` whose
operand order makes BLAS read and write the arrays in place, so there is no layout copy:

- forward: ``w (C_out, K) @ cols_n (K, OH*OW)`` lands in ``y[n]``, i.e. NCHW, directly (the 64
  GEMMs of 16x150x100 ran at 102 GFLOP/s against 52-70 for one skinny 16x150x6400 GEMM over a
  batch-innermost layout, which also needed transposes of x, gy and y: 2.43 -> 1.8 ms for the
  three ops together);
- weight gradient: ``cols_n (K, P) @ gy_n.T (P, C_out)`` per sample with ``gy_n.T`` made
  contiguous (0.03 ms; 105 GFLOP/s against 60 for BLAS's transposed operand), summed over the
  batch;
- input gradient: ``w.T (K, C_out) @ gy_n (C_out, P)`` per sample, then col2im straight into NCHW;
- stride 1 and dilation 1 take kernels whose indices are sums of loop counters (LLVM vectorises
  them: im2col 0.22-0.30 ms against 1.3 ms for the general kernel); padding goes through a
  zero-bordered scratch copy;
- the batch is split in ``threads`` contiguous parts run by Python threads
  (:func:`gpunet.parallel.over_batch`: the kernels are ``nogil``, BLAS is limited to one thread
  meanwhile, so the pools never nest), each part in chunks of :data:`CHUNK_BYTES` of columns.

Transient buffers (unkept columns, the columns' gradient, ``gy_n.T``, the per-sample weight
gradients, the padded copies) are reused across calls of the same shape (:func:`_scratch`, per
thread); the columns kept for the weight gradient are fresh each forward (a graph may be kept
alive with ``retain_graph``). No fastmath: the kernels only move and add numbers, and NaN/inf
must propagate as in the reference.
"""

from __future__ import annotations

import threading
import types
from typing import Any

import numba
import numpy as np

from gpunet import parallel, settings
from gpunet.ops.conv2d import Pair, output_size

Array = Any
_local = threading.local()
settings.apply_threads()  # before numba's pool starts: see gpunet.parallel


def _scratch(name: str, shape: tuple[int, ...], dtype: Any, zero: bool = False) -> Array:
    """A per-thread reusable buffer for a transient (never returned, never saved) array
    (``zero``: zero-filled when first made)."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    key = (name, shape, np.dtype(dtype).str)
    buf = pool.get(key)
    if buf is None:
        if len(pool) > 64:  # many shapes (a sweep): do not hoard memory
            pool.clear()
        buf = pool[key] = (np.zeros if zero else np.empty)(shape, dtype=dtype)
    return buf


@numba.njit(cache=True, inline="always")
def _valid(off, step, size, count):  # pragma: no cover - compiled
    """``(j0, j1)``: the ``j`` in ``range(count)`` with ``0 <= j*step + off < size``."""
    j0 = 0
    if off < 0:
        j0 = (-off + step - 1) // step
    j1 = 0
    if size - 1 - off >= 0:
        j1 = (size - 1 - off) // step + 1
    j0 = min(j0, count)
    j1 = min(max(j1, j0), count)
    return j0, j1


#: Below this many elements a kernel runs its serial compilation: waking the pool costs more
#: than the copy (on a busy machine a parallel region also waits for its slowest thread).
PARALLEL_MIN = 1 << 17
_SERIAL: dict[Any, Any] = {}


def _run(kernel: Any, work: int, *args: Any) -> None:
    """``kernel(*args)``: its parallel compilation for large ``work`` with more than one thread,
    else the same code compiled serially (``prange`` as ``range``)."""
    if work < PARALLEL_MIN or numba.get_num_threads() == 1:
        serial = _SERIAL.get(kernel)
        if serial is None:  # a copy under its own name, so that its disk cache is its own
            f = kernel.py_func
            copy = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__)
            copy.__qualname__ = f.__qualname__ + "_serial"
            serial = _SERIAL[kernel] = numba.njit(cache=True)(copy)
        kernel = serial
    kernel(*args)


@numba.njit(cache=True, nogil=True)
def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols):  # pragma: no cover - compiled
    """``cols[n, (c, p, q), i, j] = x_pad[n, c, i*sh + p*dh, j*sw + q*dw]``: each sample's
    columns ``(C*kh*kw, OH, OW)`` from ``x`` (n, C, H, W)."""
    n, c, h, w = x.shape
    oh, ow = cols.shape[2], cols.shape[3]
    for b in range(n):
        for a in range(c):
            for p in range(kh):
                for q in range(kw):
                    r = (a * kh + p) * kw + q
                    off = q * dw - pw
                    j0, j1 = _valid(off, sw, w, ow)
                    for i in range(oh):
                        row = i * sh - ph + p * dh
                        if row < 0 or row >= h:
                            for j in range(ow):
                                cols[b, r, i, j] = 0
                            continue
                        for j in range(j0):
                            cols[b, r, i, j] = 0
                        for j in range(j0, j1):
                            cols[b, r, i, j] = x[b, a, row, j * sw + off]
                        for j in range(j1, ow):
                            cols[b, r, i, j] = 0


@numba.njit(cache=True, nogil=True)
def col2im(dcols, kh, kw, sh, sw, ph, pw, dh, dw, gx):  # pragma: no cover - compiled
    """``gx`` (n, C, H, W) = the sum of the columns' gradient ``dcols`` (n, C*kh*kw, OH, OW)
    over the taps that read each input element (``gx`` is overwritten)."""
    n, c, h, w = gx.shape
    oh, ow = dcols.shape[2], dcols.shape[3]
    for b in range(n):
        for a in range(c):
            for u in range(h):
                for v in range(w):
                    gx[b, a, u, v] = 0
            for p in range(kh):
                for q in range(kw):
                    r = (a * kh + p) * kw + q
                    off = q * dw - pw
                    j0, j1 = _valid(off, sw, w, ow)
                    for i in range(oh):
                        row = i * sh - ph + p * dh
                        if row < 0 or row >= h:
                            continue
                        for j in range(j0, j1):
                            gx[b, a, row, j * sw + off] += dcols[b, r, i, j]


@numba.njit(cache=True, nogil=True)
def im2col_dense(x, kh, kw, cols):  # pragma: no cover - compiled
    """:func:`im2col` for stride 1, dilation 1 and no padding (``x`` padded beforehand): index
    sums of loop counters only, which LLVM vectorises (4x faster than the general kernel)."""
    n, c = x.shape[0], x.shape[1]
    oh, ow = cols.shape[2], cols.shape[3]
    for b in range(n):
        for a in range(c):
            for p in range(kh):
                for q in range(kw):
                    r = (a * kh + p) * kw + q
                    for i in range(oh):
                        for j in range(ow):
                            cols[b, r, i, j] = x[b, a, i + p, j + q]


@numba.njit(cache=True, nogil=True)
def col2im_dense(dcols, kh, kw, gx):  # pragma: no cover - compiled
    """:func:`col2im` for stride 1, dilation 1 and no padding (``gx`` overwritten)."""
    n, c, h, w = gx.shape
    oh, ow = dcols.shape[2], dcols.shape[3]
    for b in range(n):
        for a in range(c):
            for u in range(h):
                for v in range(w):
                    gx[b, a, u, v] = 0
            for p in range(kh):
                for q in range(kw):
                    r = (a * kh + p) * kw + q
                    for i in range(oh):
                        for j in range(ow):
                            gx[b, a, i + p, j + q] += dcols[b, r, i, j]


@numba.njit(cache=True, nogil=True)
def transpose_rows(gy, out):  # pragma: no cover - compiled
    """``out[n, k, o] = gy[n, o, k]`` (each sample's output gradient, pixels by channels)."""
    for b in range(gy.shape[0]):
        for o in range(gy.shape[1]):
            for k in range(gy.shape[2]):
                out[b, k, o] = gy[b, o, k]


# ------------------------------------------------------------------------------ the steps
class _Geometry:
    def __init__(self, x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair, padding: Pair,
                 dilation: Pair) -> None:
        self.n, self.c, self.h, self.w = x_shape
        self.c_out, _, self.kh, self.kw = w_shape
        self.x_shape, self.w_shape = tuple(x_shape), tuple(w_shape)
        self.args = (self.kh, self.kw, *stride, *padding, *dilation)
        self.oh = output_size(self.h, self.kh, stride[0], padding[0], dilation[0])
        self.ow = output_size(self.w, self.kw, stride[1], padding[1], dilation[1])
        self.k = self.c * self.kh * self.kw
        self.pixels = self.oh * self.ow
        self.padding = tuple(padding)
        self.dense = tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)

    def im2col(self, x: Array, cols: Array) -> None:
        """The columns of the samples ``x`` into ``cols``: stride 1 and dilation 1 (padded into a
        scratch copy whose border stays zero) take the vectorised kernel."""
        if not self.dense:
            im2col(x, *self.args, cols)
            return
        ph, pw = self.padding
        if ph or pw:
            xp = _scratch("xpad", (x.shape[0], self.c, self.h + 2 * ph, self.w + 2 * pw), x.dtype, zero=True)
            xp[:, :, ph:ph + self.h, pw:pw + self.w] = x
            x = xp
        im2col_dense(x, self.kh, self.kw, cols)

    def col2im(self, dcols: Array, gx: Array) -> None:
        """``gx`` = the columns' gradient ``dcols`` summed back onto the samples' pixels."""
        if not self.dense:
            col2im(dcols, *self.args, gx)
            return
        ph, pw = self.padding
        if not (ph or pw):
            col2im_dense(dcols, self.kh, self.kw, gx)
            return
        gp = _scratch("gpad", (gx.shape[0], self.c, self.h + 2 * ph, self.w + 2 * pw), gx.dtype)
        col2im_dense(dcols, self.kh, self.kw, gp)
        gx[...] = gp[:, :, ph:ph + self.h, pw:pw + self.w]

    def chunks(self, lo: int, hi: int, itemsize: int) -> Any:
        """``(lo, hi)`` in chunks of samples whose columns fill about :data:`CHUNK_BYTES`."""
        step = max(1, CHUNK_BYTES // max(1, self.k * self.pixels * itemsize))
        for a in range(lo, hi, step):
            yield a, min(a + step, hi)


#: Each thread forms and consumes the columns a chunk of samples at a time, about this many bytes.
#: Measured on LeNet's conv2 (the three ops, interleaved, medians of 5): 512 KiB and 2 MiB are
#: alike on one thread (2.99 vs 2.93 ms), and 2 MiB is faster on two (1.96 vs 1.77 ms: fewer
#: Python iterations contending for the GIL), so each thread's half is one chunk there.
CHUNK_BYTES = 1 << 21

#: Below this many multiply-adds a step runs on the calling thread alone (a thread hand-off
#: costs tens of microseconds).
SPLIT_MIN = 1 << 21


def _threads(g: _Geometry) -> int:
    if g.n * g.c_out * g.k * g.pixels < SPLIT_MIN:
        return 1
    return settings.current().threads


def _forward(x: Array, w: Array, b: Array | None, g: _Geometry, cols: Array | None) -> Array:
    """``y`` (N, C_out, OH, OW): per sample, ``w (C_out, K) @ columns (K, OH*OW)`` written
    straight into NCHW (a batched GEMM, no layout copy); ``cols`` (if given) keeps the columns."""
    y = np.empty((g.n, g.c_out, g.oh, g.ow), dtype=w.dtype)
    w2, y3 = w.reshape(g.c_out, g.k), y.reshape(g.n, g.c_out, g.pixels)

    def work(lo: int, hi: int) -> None:
        for a, z in g.chunks(lo, hi, x.itemsize):
            part = cols[a:z] if cols is not None else _scratch("cols", (z - a, g.k, g.oh, g.ow), x.dtype)
            g.im2col(x[a:z], part)
            np.matmul(w2, part.reshape(z - a, g.k, g.pixels), out=y3[a:z])
            if b is not None:
                y3[a:z] += b[:, None]

    parallel.over_batch(g.n, _threads(g), work)
    return y


def _grad_weight(x: Array, gy: Array, g: _Geometry, cols: Array | None) -> Array:
    """``gw = sum_n gy_n (C_out, P) @ columns_n.T``, computed transposed per sample,
    ``columns_n (K, P) @ gy_n.T (P, C_out)`` (a contiguous ``gy_n.T``: 105 GFLOP/s against 60
    for the transposed operand), then summed over the batch."""
    gy3 = gy.reshape(g.n, g.c_out, g.pixels)
    parts = _scratch("gw_parts", (g.n, g.k, g.c_out), gy.dtype)

    def work(lo: int, hi: int) -> None:
        for a, z in g.chunks(lo, hi, gy.itemsize):
            rows = _scratch("rows", (z - a, g.pixels, g.c_out), gy.dtype)
            transpose_rows(gy3[a:z], rows)
            if cols is None:
                part = _scratch("cols", (z - a, g.k, g.oh, g.ow), x.dtype)
                g.im2col(x[a:z], part)
            else:
                part = cols[a:z]
            np.matmul(part.reshape(z - a, g.k, g.pixels), rows, out=parts[a:z])

    parallel.over_batch(g.n, _threads(g), work)
    return np.ascontiguousarray(parts.sum(axis=0).T).reshape(g.w_shape)


def _grad_input(gy: Array, w: Array, g: _Geometry) -> Array:
    """Per sample, the columns' gradient ``w.T (K, C_out) @ gy_n (C_out, P)`` (a batched GEMM
    over a chunk), then col2im straight into NCHW."""
    gy3 = gy.reshape(g.n, g.c_out, g.pixels)
    w_t = w.reshape(g.c_out, g.k).T
    gx = np.empty(g.x_shape, dtype=w.dtype)

    def work(lo: int, hi: int) -> None:
        for a, z in g.chunks(lo, hi, w.itemsize):
            dcols = _scratch("cols", (z - a, g.k, g.oh, g.ow), w.dtype)
            np.matmul(w_t, gy3[a:z], out=dcols.reshape(z - a, g.k, g.pixels))
            g.col2im(dcols, gx[a:z])

    parallel.over_batch(g.n, _threads(g), work)
    return gx


def _c(a: Array) -> Array:
    return np.ascontiguousarray(a)


def conv2d_forward(x: Array, w: Array, stride: Pair, padding: Pair, dilation: Pair) -> Array:
    """:func:`gpunet.ops.conv2d.conv2d_forward` on NumPy arrays."""
    x, w = _c(x), _c(w)
    return _forward(x, w, None, _Geometry(x.shape, w.shape, stride, padding, dilation), None)


def conv2d_backward_weight(x: Array, gy: Array, w_shape: tuple[int, ...], stride: Pair, padding: Pair,
                           dilation: Pair) -> Array:
    """:func:`gpunet.ops.conv2d.conv2d_backward_weight` on NumPy arrays."""
    x = _c(x)
    return _grad_weight(x, _c(gy), _Geometry(x.shape, tuple(w_shape), stride, padding, dilation), None)


def conv2d_backward_input(gy: Array, w: Array, x_shape: tuple[int, ...], stride: Pair, padding: Pair,
                          dilation: Pair) -> Array:
    """:func:`gpunet.ops.conv2d.conv2d_backward_input` on NumPy arrays."""
    w = _c(w)
    return _grad_input(_c(gy), w, _Geometry(tuple(x_shape), w.shape, stride, padding, dilation))


Needs = tuple[bool, bool, bool]


class CompiledConv2d:
    """The ``conv2d`` op's ``numpy-fast`` implementation (the interface of
    :class:`gpunet.ops.conv2d.Im2colConv2d`): the columns are kept for the weight gradient."""

    def forward(self, x: Array, w: Array, b: Array | None, stride: Pair, padding: Pair, dilation: Pair,
                save: bool, need_x_grad: bool) -> tuple[Array, Any]:
        x, w = _c(x), _c(w)
        g = _Geometry(x.shape, w.shape, stride, padding, dilation)
        if not save:
            return _forward(x, w, b, g, None), None
        cols = np.empty((g.n, g.k, g.oh, g.ow), dtype=x.dtype)
        return _forward(x, w, b, g, cols), (cols, w, g)

    def backward(self, gy: Array, state: Any, needs: Needs) -> tuple[Array | None, Array | None, Array | None]:
        cols, w, g = state
        gy = _c(gy)
        gx = _grad_input(gy, w, g) if needs[0] else None
        gw = _grad_weight(None, gy, g, cols) if needs[1] else None
        gb = gy.sum(axis=(0, 2, 3)) if needs[2] else None
        return gx, gw, gb


COMPILED = CompiledConv2d()
