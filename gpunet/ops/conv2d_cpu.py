"""The NumPy fast path (``numpy-fast``) of conv2d: numba packing kernels around one BLAS GEMM.

Method (chosen by measurement, LeNet's conv2 ``x (64, 6, 14, 14)``, ``w (16, 6, 5, 5)``, one
core): a direct numba convolution (16 output channels vectorised, 150 taps) ran the forward in
3.3 ms; im2col + one GEMM over the whole batch runs it in about 0.8 ms, because OpenBLAS's
SGEMM (about 56 GFLOP/s on these shapes) beats anything numba's auto-vectoriser makes of a
short, load-bound loop nest. So the batch becomes one large GEMM, and numba does the packing:

- the columns are laid out ``(C*kh*kw, out_h, out_w, N)`` ("batch innermost"), so with stride 1
  every kernel tap of one output row is a single contiguous run of ``out_w * N`` values of the
  input transposed to ``(C, H, W, N)``: im2col is a few long copies instead of ``N*out_h`` runs
  of ``out_w`` (10 values in LeNet, which made a row-by-row im2col as slow as the GEMM);
- the layout changes (NCHW <-> batch innermost) are fused into the kernels around the GEMMs:
  the forward's output copy adds the bias;
- columns that are not kept (the hot ops' forward and weight gradient, inference) and the
  columns' gradient are formed and consumed a band of output rows at a time (``BAND_BYTES``,
  512 KiB: one core's L2 here), so the 3.8 MiB matrices of LeNet's conv2 never round-trip
  through memory: measured interleaved in one process (forward + both gradients, 1 thread),
  banding the forward and weight gradient gave 0.90x the time of the whole-matrix version and
  banding the input gradient (a scatter-add col2im per band, one task per channel, into a
  batch-innermost buffer transposed to NCHW at the end) kept that;
- every kernel is ``parallel=True`` over independent output blocks (with a serial compilation
  of the same code for small arrays and one thread, :func:`_run`); the GEMMs are BLAS calls
  made between numba regions (never inside one), so the two thread pools never nest.

Transient buffers (the transposed input, the output gradient rows, the column gradient) are
reused across calls of the same shape (:func:`_scratch`); the columns kept for the weight
gradient are fresh each forward (a graph may be kept alive with ``retain_graph``).
No fastmath: the kernels only move and add numbers, and NaN/inf must propagate as in the
reference.
"""

from __future__ import annotations

import threading
import types
from typing import Any

import numba
import numpy as np

from gpunet import settings
from gpunet.ops.conv2d import Pair, output_size

Array = Any
_local = threading.local()
settings.apply_threads()  # before numba's pool starts: see gpunet.parallel


def _scratch(name: str, shape: tuple[int, ...], dtype: Any) -> Array:
    """A per-thread reusable buffer for a transient (never returned, never saved) array."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    key = (name, shape, np.dtype(dtype).str)
    buf = pool.get(key)
    if buf is None:
        if len(pool) > 64:  # many shapes (a sweep): do not hoard memory
            pool.clear()
        buf = pool[key] = np.empty(shape, dtype=dtype)
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


@numba.njit(parallel=True, cache=True)
def to_batch_inner(x, out):  # pragma: no cover - compiled
    """``out[c, h, w, n] = x[n, c, h, w]`` (NCHW to batch innermost)."""
    n, c, h, w = x.shape
    for task in numba.prange(c * h):
        a = task // h
        r = task - a * h
        for s in range(w):
            for b in range(n):
                out[a, r, s, b] = x[b, a, r, s]


@numba.njit(parallel=True, cache=True)
def to_batch_inner_blocked(x, out):  # pragma: no cover - compiled
    """:func:`to_batch_inner` 8 images at a time, for image strides that are a multiple of 4 KiB
    (LeNet's 1x32x32): the rows read then stay in L1 instead of evicting each other (about 4x
    faster there, 3x slower elsewhere)."""
    n, c, h, w = x.shape
    for task in numba.prange(c * h):
        a = task // h
        r = task - a * h
        for b0 in range(0, n, 8):
            b1 = min(b0 + 8, n)
            for s in range(w):
                for b in range(b0, b1):
                    out[a, r, s, b] = x[b, a, r, s]


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


def _transpose(x: Array, out: Array) -> None:
    blocked = x.shape[0] >= 16 and (x[0].nbytes % 4096) == 0
    _run(to_batch_inner_blocked if blocked else to_batch_inner, x.size, x, out)


@numba.njit(parallel=True, cache=True)
def im2col(xt, kh, kw, sh, sw, ph, pw, dh, dw, i0, cols):  # pragma: no cover - compiled
    """``cols[(c, p, q), i, j, n] = x_pad[n, c, (i0 + i)*sh + p*dh, j*sw + q*dw]`` from ``xt``
    (C, H, W, N): the columns of output rows ``i0 .. i0 + cols.shape[1] - 1``."""
    c, h, w, n = xt.shape
    oh, ow = cols.shape[1], cols.shape[2]
    kk = kh * kw
    for task in numba.prange(c * kk * oh):
        r = task // oh
        i = task - r * oh
        a = r // kk
        p = (r - a * kk) // kw
        q = r - a * kk - p * kw
        row = (i0 + i) * sh - ph + p * dh
        if row < 0 or row >= h:
            for j in range(ow):
                for b in range(n):
                    cols[r, i, j, b] = 0
            continue
        off = q * dw - pw
        j0, j1 = _valid(off, sw, w, ow)
        for j in range(j0):
            for b in range(n):
                cols[r, i, j, b] = 0
        for j in range(j0, j1):
            s = j * sw + off
            for b in range(n):
                cols[r, i, j, b] = xt[a, row, s, b]
        for j in range(j1, ow):
            for b in range(n):
                cols[r, i, j, b] = 0


@numba.njit(parallel=True, cache=True)
def from_batch_inner(yc, bias, use_bias, y):  # pragma: no cover - compiled
    """``y[n, o, i, j] = yc[o, i, j, n] (+ bias[o])``: the GEMM's output to NCHW, one output
    row ``(o, i)`` per task (contiguous reads), 8 images at a time."""
    o_count, oh, ow, n = yc.shape
    for task in numba.prange(o_count * oh):
        o = task // oh
        i = task - o * oh
        add = bias[o] if use_bias else yc.dtype.type(0)
        for b0 in range(0, n, 8):
            b1 = min(b0 + 8, n)
            for j in range(ow):
                for b in range(b0, b1):
                    y[b, o, i, j] = yc[o, i, j, b] + add


@numba.njit(parallel=True, cache=True)
def col2im_add(dcols, kh, kw, sh, sw, ph, pw, dh, dw, i0, gxt):  # pragma: no cover - compiled
    """``gxt`` (C, H, W, N) ``+=`` the columns' gradient ``dcols`` ``(C*kh*kw, R, OW, N)`` of
    output rows ``i0 .. i0 + R - 1`` (one task per channel: no two tasks write one element)."""
    c, h, w, n = gxt.shape
    band, ow = dcols.shape[1], dcols.shape[2]
    for a in numba.prange(c):
        for p in range(kh):
            for q in range(kw):
                r = (a * kh + p) * kw + q
                off = q * dw - pw
                j0, j1 = _valid(off, sw, w, ow)
                for ii in range(band):
                    u = (i0 + ii) * sh - ph + p * dh
                    if u < 0 or u >= h:
                        continue
                    for j in range(j0, j1):
                        s = j * sw + off
                        for b in range(n):
                            gxt[a, u, s, b] += dcols[r, ii, j, b]


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
        self.columns = self.oh * self.ow * self.n


def _columns(x: Array, g: _Geometry) -> Array:
    """All the columns, fresh (kept for the weight gradient)."""
    xt = _scratch("xt", (g.c, g.h, g.w, g.n), x.dtype)
    _transpose(x, xt)
    cols = np.empty((g.k, g.oh, g.ow, g.n), dtype=x.dtype)
    _run(im2col, cols.size, xt, *g.args, 0, cols)
    return cols


def _forward(cols: Array, w: Array, b: Array | None, g: _Geometry) -> Array:
    yc = _scratch("yc", (g.c_out, g.oh, g.ow, g.n), w.dtype)
    np.matmul(w.reshape(g.c_out, g.k), cols.reshape(g.k, g.columns), out=yc.reshape(g.c_out, g.columns))
    y = np.empty((g.n, g.c_out, g.oh, g.ow), dtype=w.dtype)
    _run(from_batch_inner, y.size, yc, b if b is not None else yc[0, 0, 0], b is not None, y)
    return y


#: Columns not kept (the hot ops' forward and weight gradient) are formed and consumed a band of
#: output rows at a time, this many bytes of columns per band: the band stays in L2 between
#: im2col and its GEMM instead of a round trip of the whole matrix through memory.
BAND_BYTES = 1 << 19


def _band_rows(g: _Geometry, itemsize: int) -> int:
    """Output rows per band: :data:`BAND_BYTES` of columns, at least one row."""
    return max(1, min(g.oh, BAND_BYTES // max(1, g.k * g.ow * g.n * itemsize)))


def _bands(x: Array, g: _Geometry) -> Any:
    """``(i0, i1, cols)`` per band of output rows, ``cols`` ``(K, i1 - i0, OW, N)``, from one transposed input."""
    xt = _scratch("xt", (g.c, g.h, g.w, g.n), x.dtype)
    _transpose(x, xt)
    rows = _band_rows(g, x.itemsize)
    for i0 in range(0, g.oh, rows):
        i1 = min(i0 + rows, g.oh)
        cols = _scratch("band", (g.k, i1 - i0, g.ow, g.n), x.dtype)
        _run(im2col, cols.size, xt, *g.args, i0, cols)
        yield i0, i1, cols


def _forward_banded(x: Array, w: Array, b: Array | None, g: _Geometry) -> Array:
    yc = _scratch("yc", (g.c_out, g.oh, g.ow, g.n), w.dtype)
    w2 = w.reshape(g.c_out, g.k)
    for i0, i1, cols in _bands(x, g):
        np.matmul(w2, cols.reshape(g.k, -1), out=yc[:, i0:i1].reshape(g.c_out, -1))
    y = np.empty((g.n, g.c_out, g.oh, g.ow), dtype=w.dtype)
    _run(from_batch_inner, y.size, yc, b if b is not None else yc[0, 0, 0], b is not None, y)
    return y


def _grad_weight_banded(x: Array, gy: Array, g: _Geometry) -> Array:
    rows = _rows(gy, g).reshape(g.c_out, g.oh, g.ow, g.n)
    gw_t = np.zeros((g.k, g.c_out), dtype=x.dtype)
    part = np.empty_like(gw_t)
    for i0, i1, cols in _bands(x, g):
        np.matmul(cols.reshape(g.k, -1), rows[:, i0:i1].reshape(g.c_out, -1).T, out=part)
        gw_t += part
    return np.ascontiguousarray(gw_t.T).reshape(g.w_shape)


def _rows(gy: Array, g: _Geometry) -> Array:
    rows = _scratch("rows", (g.c_out, g.oh, g.ow, g.n), gy.dtype)
    _transpose(np.ascontiguousarray(gy), rows)
    return rows.reshape(g.c_out, g.columns)


def _grad_weight(cols: Array, rows: Array, g: _Geometry) -> Array:
    # (K, NP) @ (NP, C_out), then transposed: OpenBLAS ran this order at 38 GFLOP/s on LeNet's
    # conv2 against 31 for rows @ cols.T (the result is tiny, the transpose free)
    gw_t = np.matmul(cols.reshape(g.k, g.columns), rows.T)
    return np.ascontiguousarray(gw_t.T).reshape(g.w_shape)


def _grad_input(rows: Array, w: Array, g: _Geometry) -> Array:
    """col2im of ``w.T @ rows`` a band of output rows at a time (the band's columns' gradient
    stays in L2), accumulated batch innermost, then transposed to NCHW."""
    rows4 = rows.reshape(g.c_out, g.oh, g.ow, g.n)
    w_t = w.reshape(g.c_out, g.k).T
    gxt = _scratch("gxt", (g.c, g.h, g.w, g.n), w.dtype)
    gxt.fill(0)
    band = _band_rows(g, w.itemsize)
    for i0 in range(0, g.oh, band):
        i1 = min(i0 + band, g.oh)
        dcols = _scratch("band", (g.k, i1 - i0, g.ow, g.n), w.dtype)
        np.matmul(w_t, rows4[:, i0:i1].reshape(g.c_out, -1), out=dcols.reshape(g.k, -1))
        _run(col2im_add, dcols.size, dcols, *g.args, i0, gxt)
    gx = np.empty(g.x_shape, dtype=w.dtype)
    _run(from_batch_inner, gx.size, gxt, gxt[0, 0, 0], False, gx)
    return gx


def _c(a: Array) -> Array:
    return np.ascontiguousarray(a)


def conv2d_forward(x: Array, w: Array, stride: Pair, padding: Pair, dilation: Pair) -> Array:
    """:func:`gpunet.ops.conv2d.conv2d_forward` on NumPy arrays."""
    x, w = _c(x), _c(w)
    g = _Geometry(x.shape, w.shape, stride, padding, dilation)
    return _forward_banded(x, w, None, g)


def conv2d_backward_weight(x: Array, gy: Array, w_shape: tuple[int, ...], stride: Pair, padding: Pair,
                           dilation: Pair) -> Array:
    """:func:`gpunet.ops.conv2d.conv2d_backward_weight` on NumPy arrays."""
    x = _c(x)
    g = _Geometry(x.shape, tuple(w_shape), stride, padding, dilation)
    return _grad_weight_banded(x, gy, g)


def conv2d_backward_input(gy: Array, w: Array, x_shape: tuple[int, ...], stride: Pair, padding: Pair,
                          dilation: Pair) -> Array:
    """:func:`gpunet.ops.conv2d.conv2d_backward_input` on NumPy arrays."""
    w = _c(w)
    g = _Geometry(tuple(x_shape), w.shape, stride, padding, dilation)
    return _grad_input(_rows(gy, g), w, g)


Needs = tuple[bool, bool, bool]


class CompiledConv2d:
    """The ``conv2d`` op's ``numpy-fast`` implementation (the interface of
    :class:`gpunet.ops.conv2d.Im2colConv2d`): the columns are kept for the weight gradient."""

    def forward(self, x: Array, w: Array, b: Array | None, stride: Pair, padding: Pair, dilation: Pair,
                save: bool, need_x_grad: bool) -> tuple[Array, Any]:
        x, w = _c(x), _c(w)
        g = _Geometry(x.shape, w.shape, stride, padding, dilation)
        if not save:
            return _forward_banded(x, w, b, g), None
        cols = _columns(x, g)
        return _forward(cols, w, b, g), (cols, w, g)

    def backward(self, gy: Array, state: Any, needs: Needs) -> tuple[Array | None, Array | None, Array | None]:
        cols, w, g = state
        rows = _rows(gy, g)
        gx = _grad_input(rows, w, g) if needs[0] else None
        gw = _grad_weight(cols, rows, g) if needs[1] else None
        gb = gy.sum(axis=(0, 2, 3)) if needs[2] else None
        return gx, gw, gb


COMPILED = CompiledConv2d()
