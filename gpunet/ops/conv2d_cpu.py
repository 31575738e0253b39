"""The NumPy fast path (``numpy-fast``) of conv2d: numba kernels that form each sample's columns
and hand them to BLAS, the batch split over numba's threads.

Method (chosen by measurement, LeNet's conv2 ``x (64, 6, 14, 14)``, ``w (16, 6, 5, 5)``, one
core): a direct numba convolution ran the forward in 3.3 ms and a direct numba input gradient in
4.4 ms; columns + SGEMM run them in about 0.5 ms each, because BLAS beats what numba's
auto-vectoriser makes of a short, load-bound loop nest. The columns are laid out **per sample**,
``(N, C*kh*kw, OH, OW)``, and every GEMM is one sample's, so there is no layout copy:

- forward: ``w (C_out, K) @ cols_n (K, OH*OW)`` lands in ``y[n]``, i.e. NCHW, directly (102
  GFLOP/s against 52-70 for one skinny GEMM over a batch-innermost layout, which also needed
  transposes of x, gy and y);
- weight gradient: ``cols_n (K, P) @ gy_n.T (P, C_out)`` with ``gy_n.T`` made contiguous (105
  GFLOP/s against 60 for BLAS's transposed operand), summed per thread; the bias gradient is
  summed in the same pass;
- input gradient: ``w.T (K, C_out) @ gy_n (C_out, P)``, then col2im straight into NCHW;
- stride 1 and dilation 1 take kernels whose indices are sums of loop counters (LLVM vectorises
  them: 4x faster than the general kernel); padding goes through a zero-bordered copy.

**Threads.** Each op is one numba ``parallel=True`` region with one ``prange`` iteration per
thread; the threads claim chunks of the batch until none is left (:mod:`gpunet.ops.regions_cpu`:
a slower thread takes fewer, and the results do not depend on the thread count). The GEMMs are
``np.dot`` inside it (numba calls SciPy's BLAS, held at one thread, so the pools never nest).
One region per op replaced Python threads handing parts to each other: a hand-off through a
lock costs about 50 us on a virtual machine (an idle vCPU is woken by an interrupt) and the
woken thread then waited for the GIL, so LeNet's step gained nothing from a second core; numba's
pool, kept spinning between the regions of a step (:mod:`gpunet.parallel`), enters a region in
2-6 us. Small ops (under :data:`SPLIT_MIN` multiply-adds) run on the calling thread alone.

**Compile time.** numba compiles each region once per dtype and geometry kind and caches it on
disk. A cold cache costs about 14 s on LeNet's first step (2 threads; 10 s at 1 thread); later
processes load it in about 0.3 s. The ``geo`` tuple's length selects the columns kernel at
compile time (:func:`sample_columns`), so a geometry compiles only the kernel it uses.

Transient buffers (unkept columns, the columns' gradient, ``gy_n.T``, the padded copies, the
per-chunk sums) are reused across calls of the same shape (:func:`gpunet.ops.regions_cpu.scratch`, per thread); the
columns kept for the weight gradient are fresh each forward (a graph may be kept alive with
``retain_graph``). No fastmath: NaN/inf must propagate as in the reference.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba.extending import overload

from gpunet.ops import conv2d as reference
from gpunet.ops.conv2d import Pair, output_size
from gpunet.ops.regions_cpu import chunk_count, claim, in_parts, scratch, threads

Array = Any


# ------------------------------------------------------------------ one sample's columns
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


@numba.njit(cache=True, nogil=True)
def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols):  # pragma: no cover - compiled
    """``cols[(c, p, q), i, j] = x_pad[c, i*sh + p*dh, j*sw + q*dw]``: one sample's columns
    ``(C*kh*kw, OH, OW)`` from ``x`` (C, H, W)."""
    c, h, w = x.shape
    oh, ow = cols.shape[1], cols.shape[2]
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
                            cols[r, i, j] = 0
                        continue
                    for j in range(j0):
                        cols[r, i, j] = 0
                    for j in range(j0, j1):
                        cols[r, i, j] = x[a, row, j * sw + off]
                    for j in range(j1, ow):
                        cols[r, i, j] = 0


@numba.njit(cache=True, nogil=True)
def col2im(dcols, kh, kw, sh, sw, ph, pw, dh, dw, gx):  # pragma: no cover - compiled
    """``gx`` (C, H, W) = one sample's columns' gradient ``dcols`` (C*kh*kw, OH, OW) summed over
    the taps that read each input element (``gx`` is overwritten)."""
    c, h, w = gx.shape
    oh, ow = dcols.shape[1], dcols.shape[2]
    gx[:] = 0
    for a in range(c):
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
                        gx[a, row, j * sw + off] += dcols[r, i, j]


@numba.njit(cache=True, nogil=True)
def im2col_dense(x, kh, kw, cols):  # pragma: no cover - compiled
    """:func:`im2col` for stride 1, dilation 1 and no padding (``x`` padded beforehand): index
    sums of loop counters only, which LLVM vectorises."""
    c = x.shape[0]
    oh, ow = cols.shape[1], cols.shape[2]
    for a in range(c):
        for p in range(kh):
            for q in range(kw):
                r = (a * kh + p) * kw + q
                for i in range(oh):
                    for j in range(ow):
                        cols[r, i, j] = x[a, i + p, j + q]


@numba.njit(cache=True, nogil=True)
def col2im_dense(dcols, kh, kw, gx):  # pragma: no cover - compiled
    """:func:`col2im` for stride 1, dilation 1 and no padding (``gx`` overwritten)."""
    c = gx.shape[0]
    oh, ow = dcols.shape[1], dcols.shape[2]
    gx[:] = 0
    for a in range(c):
        for p in range(kh):
            for q in range(kw):
                r = (a * kh + p) * kw + q
                for i in range(oh):
                    for j in range(ow):
                        gx[a, i + p, j + q] += dcols[r, i, j]


def sample_columns(x, geo, xpad, cols):  # pragma: no cover - a stub: numba compiles the overload
    """One sample's columns into ``cols``. ``geo`` picks the kernel by its length, so that numba
    compiles only the one a geometry needs: ``(kh, kw)`` the dense kernel (stride 1, dilation 1,
    no padding), ``(kh, kw, ph, pw)`` the dense kernel through the zero-bordered ``xpad``,
    ``(kh, kw, sh, sw, ph, pw, dh, dw)`` the general one."""
    raise NotImplementedError("compiled code only")


def sample_col2im(dcols, geo, gpad, gx):  # pragma: no cover - a stub: numba compiles the overload
    """One sample's input gradient ``gx`` from its columns' gradient (``geo`` as in
    :func:`sample_columns`)."""
    raise NotImplementedError("compiled code only")


@overload(sample_columns)
def _sample_columns(x, geo, xpad, cols):  # pragma: no cover - compiled
    if len(geo) == 2:
        def dense(x, geo, xpad, cols):
            im2col_dense(x, geo[0], geo[1], cols)
        return dense
    if len(geo) == 4:
        def padded(x, geo, xpad, cols):
            kh, kw, ph, pw = geo
            xpad[:, ph:ph + x.shape[1], pw:pw + x.shape[2]] = x
            im2col_dense(xpad, kh, kw, cols)
        return padded

    def general(x, geo, xpad, cols):
        kh, kw, sh, sw, ph, pw, dh, dw = geo
        im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols)
    return general


@overload(sample_col2im)
def _sample_col2im(dcols, geo, gpad, gx):  # pragma: no cover - compiled
    if len(geo) == 2:
        def dense(dcols, geo, gpad, gx):
            col2im_dense(dcols, geo[0], geo[1], gx)
        return dense
    if len(geo) == 4:
        def padded(dcols, geo, gpad, gx):
            kh, kw, ph, pw = geo
            col2im_dense(dcols, kh, kw, gpad)
            gx[:] = gpad[:, ph:ph + gx.shape[1], pw:pw + gx.shape[2]]
        return padded

    def general(dcols, geo, gpad, gx):
        kh, kw, sh, sw, ph, pw, dh, dw = geo
        col2im(dcols, kh, kw, sh, sw, ph, pw, dh, dw, gx)
    return general


# ------------------------------------------------------------------ the three ops, by chunks
# Each op is a serial ``*_part(..., t, lo, hi)`` over samples ``lo:hi`` with thread slot ``t``'s
# scratch, run by a thin ``parallel=True`` wrapper whose threads claim chunks of the batch until
# none is left (:mod:`gpunet.ops.regions_cpu`; for one thread too: see in_parts).
@numba.njit(cache=True, nogil=True, inline="always")
def sample_forward(xb, w2, bias, geo, xpad_t, c, out):  # pragma: no cover - compiled
    """One sample: its columns into ``c`` (K, OH, OW), then ``out`` (C_out, OH*OW) = ``w2 @
    c`` (+ ``bias``, when it has entries)."""
    k, pixels = c.shape[0], c.shape[1] * c.shape[2]
    sample_columns(xb, geo, xpad_t, c)
    np.dot(w2, c.reshape(k, pixels), out)
    for o in range(bias.shape[0]):
        for p in range(pixels):
            out[o, p] += bias[o]


@numba.njit(cache=True, nogil=True, inline="always")
def sample_grads(g, c, r, z, acc, first, gb, need_x, w_t, d, geo, gpad_t, gxb):  # pragma: no cover
    """One sample's share of the gradients from its output gradient ``g`` (C_out, P) and columns
    ``c`` (K, OH, OW): ``acc`` (K, C_out) ``=`` (``first``) or ``+=`` ``c @ g.T`` (through the
    thread's ``r`` = ``g.T`` and ``z``), ``gb += g`` summed over pixels (when ``gb`` has
    entries), and with ``need_x`` the input gradient ``gxb`` = col2im(``w_t @ g``) (via ``d``)."""
    c_out, pixels = g.shape
    k = c.shape[0]
    for o in range(c_out):
        s = 0.0
        for p in range(pixels):
            r[p, o] = g[o, p]
            s += g[o, p]
        if gb.shape[0]:
            gb[o] += s
    if first:  # the chunk's first sample writes its partial directly
        np.dot(c.reshape(k, pixels), r, acc)
    else:
        np.dot(c.reshape(k, pixels), r, z)
        for i in range(k):
            for o in range(c_out):
                acc[i, o] += z[i, o]
    if need_x:  # the input gradient of the same sample, its g still in cache
        np.dot(w_t, g, d.reshape(k, pixels))
        sample_col2im(d, geo, gpad_t, gxb)


@numba.njit(cache=True, nogil=True, inline="always")
def chunk_sums(gw_chunks, gb_chunks, chunk, empty):  # pragma: no cover - compiled
    """Chunk ``chunk``'s weight partial and its bias partial (zeroed; a length-0 row when the
    op has no bias); the weight partial is zeroed only for an ``empty`` chunk (otherwise its first
    sample writes it)."""
    acc = gw_chunks[chunk]
    if empty:
        acc[:] = 0
    gb = gb_chunks[chunk] if gb_chunks.shape[0] else gb_chunks.reshape(-1)
    gb[:] = 0
    return acc, gb


@numba.njit(cache=True, nogil=True, inline="always")
def forward_part(x, w2, bias, geo, xpad, cols, keep, y, t, lo, hi):  # pragma: no cover - compiled
    """``y[n] = w2 @ columns(x[n]) (+ bias)`` for samples ``lo:hi``; ``keep``: ``cols`` holds
    every sample's columns, else one scratch per thread slot."""
    c_out, pixels = w2.shape[0], cols.shape[2] * cols.shape[3]
    for b in range(lo, hi):
        sample_forward(x[b], w2, bias, geo, xpad[t], cols[b] if keep else cols[t], y[b].reshape(c_out, pixels))


@numba.njit(cache=True, nogil=True, inline="always")
def weight_part(x, gy, geo, xpad, cols, keep, rows, tmp, gw_chunks, gb_chunks, need_x, w_t, dcols, gpad,
                gx, t, chunk, lo, hi):  # pragma: no cover - compiled
    """``gw_chunks[chunk] = sum_n columns_n (K, P) @ gy_n.T (P, C_out)`` and ``gb_chunks[chunk]
    = sum_n gy_n`` summed over pixels (when ``gb_chunks`` has rows), over samples ``lo:hi``; with
    ``need_x`` also their input gradients, as :func:`input_part` (one region for both)."""
    c_out, pixels = gy.shape[1], cols.shape[2] * cols.shape[3]
    acc, gb = chunk_sums(gw_chunks, gb_chunks, chunk, hi == lo)
    for b in range(lo, hi):
        if keep:
            c = cols[b]
        else:
            c = cols[t]
            sample_columns(x[b], geo, xpad[t], c)
        sample_grads(gy[b].reshape(c_out, pixels), c, rows[t], tmp[t], acc, b == lo, gb, need_x, w_t, dcols[t],
                     geo, gpad[t], gx[b if need_x else 0])


@numba.njit(cache=True, nogil=True, inline="always")
def input_part(gy, w_t, geo, dcols, gpad, gx, t, lo, hi):  # pragma: no cover - compiled
    """``gx[n] = col2im(w_t (K, C_out) @ gy_n (C_out, P))`` for samples ``lo:hi``."""
    c_out = gy.shape[1]
    k, oh, ow = dcols.shape[1], dcols.shape[2], dcols.shape[3]
    d = dcols[t]
    for b in range(lo, hi):
        np.dot(w_t, gy[b].reshape(c_out, oh * ow), d.reshape(k, oh * ow))
        sample_col2im(d, geo, gpad[t], gx[b])


@numba.njit(parallel=True, cache=True, nogil=True)
def forward_parts(x, w2, bias, geo, xpad, cols, keep, y, parts):  # pragma: no cover - compiled
    """:func:`forward_part` over the batch's chunks, claimed by ``parts`` threads."""
    counter = np.zeros(1, np.int64)
    for t in numba.prange(parts):
        chunk, lo, hi = claim(counter, x.shape[0])
        while chunk >= 0:
            forward_part(x, w2, bias, geo, xpad, cols, keep, y, t, lo, hi)
            chunk, lo, hi = claim(counter, x.shape[0])


@numba.njit(parallel=True, cache=True, nogil=True)
def weight_parts(x, gy, geo, xpad, cols, keep, rows, tmp, gw_chunks, gb_chunks, need_x, w_t, dcols,
                 gpad, gx, parts):  # pragma: no cover - compiled
    """:func:`weight_part` over the batch's chunks (``gw_chunks`` has one row per chunk:
    :func:`gpunet.ops.regions_cpu.chunk_count`), claimed by ``parts`` threads."""
    counter = np.zeros(1, np.int64)
    for t in numba.prange(parts):
        chunk, lo, hi = claim(counter, gy.shape[0])
        while chunk >= 0:
            weight_part(x, gy, geo, xpad, cols, keep, rows, tmp, gw_chunks, gb_chunks, need_x, w_t, dcols, gpad,
                        gx, t, chunk, lo, hi)
            chunk, lo, hi = claim(counter, gy.shape[0])


@numba.njit(parallel=True, cache=True, nogil=True)
def input_parts(gy, w_t, geo, dcols, gpad, gx, parts):  # pragma: no cover - compiled
    """:func:`input_part` over the batch's chunks, claimed by ``parts`` threads."""
    counter = np.zeros(1, np.int64)
    for t in numba.prange(parts):
        chunk, lo, hi = claim(counter, gy.shape[0])
        while chunk >= 0:
            input_part(gy, w_t, geo, dcols, gpad, gx, t, lo, hi)
            chunk, lo, hi = claim(counter, gy.shape[0])


# ------------------------------------------------------------------------------ the steps
class _Geometry:
    def __init__(self, x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair, padding: Pair,
                 dilation: Pair) -> None:
        self.n, self.c, self.h, self.w = x_shape
        self.c_out, _, self.kh, self.kw = w_shape
        self.x_shape, self.w_shape = tuple(x_shape), tuple(w_shape)
        self.dense = tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
        ph, pw = map(int, padding)
        if not self.dense:  # see sample_columns: the tuple's length picks the kernel
            self.geo: tuple[int, ...] = (self.kh, self.kw, *map(int, stride), ph, pw, *map(int, dilation))
        else:
            self.geo = (self.kh, self.kw, ph, pw) if ph or pw else (self.kh, self.kw)
        self.oh = output_size(self.h, self.kh, stride[0], padding[0], dilation[0])
        self.ow = output_size(self.w, self.kw, stride[1], padding[1], dilation[1])
        self.k = self.c * self.kh * self.kw
        self.pixels = self.oh * self.ow
        self.padding = tuple(padding)
        self.parts = self._parts()

    def _parts(self) -> int:
        """Threads for this geometry: one below :data:`SPLIT_MIN` multiply-adds, else the setting
        (at most one per sample)."""
        if self.n * self.c_out * self.k * self.pixels < SPLIT_MIN:
            return 1
        return max(1, min(self.n, threads()))

    def padded(self, name: str, dtype: Any) -> Array:
        """One zero-bordered ``(C, H+2ph, W+2pw)`` scratch per part (a placeholder if unpadded)."""
        ph, pw = self.padding
        if not (self.dense and (ph or pw)):
            return scratch(name, (self.parts, 1, 1, 1), dtype)
        return scratch(name, (self.parts, self.c, self.h + 2 * ph, self.w + 2 * pw), dtype, zero=True)


#: Below this many multiply-adds an op runs on the calling thread alone.
SPLIT_MIN = 1 << 21


def _dtype(*arrays: Array) -> Any:
    """The dtype the op computes in; ``None`` for one these kernels do not take (float16 goes to
    the reference, as before); other kinds are refused in one line."""
    dtype = np.result_type(*arrays)
    if dtype in (np.float32, np.float64):
        return dtype
    if dtype.kind == "f":
        return None
    raise TypeError(f"conv2d (numpy-fast): expected floating-point arrays, got {dtype}")


def _c(a: Array, dtype: Any) -> Array:
    return np.ascontiguousarray(a, dtype=dtype)


def _forward(x: Array, w: Array, b: Array | None, g: _Geometry, keep: bool) -> tuple[Array, Array]:
    """``y`` (N, C_out, OH, OW) and the columns (every sample's when ``keep``, else scratch)."""
    y = np.empty((g.n, g.c_out, g.oh, g.ow), dtype=w.dtype)
    cols = (np.empty((g.n, g.k, g.oh, g.ow), dtype=w.dtype) if keep
            else scratch("cols", (g.parts, g.k, g.oh, g.ow), w.dtype))
    bias = b if b is not None else np.zeros(0, dtype=w.dtype)
    in_parts(forward_parts, g.parts, x, w.reshape(g.c_out, g.k), bias, g.geo, g.padded("xpad", w.dtype),
             cols, keep, y)
    return y, cols


def grad_buffers(g: _Geometry, dtype: Any, bias: bool, w: Array | None) -> tuple[Array, ...]:
    """The weight gradient region's buffers after the columns: ``(rows, tmp, gw_chunks,
    gb_chunks, need_x, w_t, dcols, gpad, gx)``; with ``w`` those of the input gradient too,
    else placeholders that are never read (one entry per index the kernel forms)."""
    rows = scratch("rows", (g.parts, g.pixels, g.c_out), dtype)
    tmp = scratch("gw_tmp", (g.parts, g.k, g.c_out), dtype)
    chunks = chunk_count(g.n)
    gw_chunks = scratch("gw_chunks", (chunks, g.k, g.c_out), dtype)
    gb_chunks = scratch("gb_chunks", (chunks if bias else 0, g.c_out), dtype)
    if w is not None:
        w_t, gx = np.ascontiguousarray(w.reshape(g.c_out, g.k).T), np.empty(g.x_shape, dtype=dtype)
        dcols = scratch("dcols", (g.parts, g.k, g.oh, g.ow), dtype)
    else:
        w_t, gx = np.zeros((0, 0), dtype=dtype), np.zeros((1, 1, 1, 1), dtype=dtype)
        dcols = np.zeros((g.parts, 1, 1, 1), dtype=dtype)
    return rows, tmp, gw_chunks, gb_chunks, w is not None, w_t, dcols, g.padded("gpad", dtype), gx


def grad_results(g: _Geometry, buffers: tuple[Array, ...], bias: bool) -> tuple[Array, Array | None, Array | None]:
    """``(gw, gb, gx)`` from :func:`grad_buffers` after the region ran."""
    gw_chunks, gb_chunks, need_x, gx = buffers[2], buffers[3], buffers[4], buffers[8]
    gw = np.ascontiguousarray(_in_order(gw_chunks).T).reshape(g.w_shape)
    return gw, (_in_order(gb_chunks) if bias else None), (gx if need_x else None)


def _grad_weight(x: Array | None, gy: Array, g: _Geometry, cols: Array | None, bias: bool,
                 w: Array | None = None) -> tuple[Array, Array | None, Array | None]:
    """``(gw, gb, gx)``: ``gw = sum_n gy_n (C_out, P) @ columns_n.T``, computed transposed per
    sample, ``columns_n (K, P) @ gy_n.T (P, C_out)``; the bias gradient from the same pass; given
    ``w``, the input gradient too, in the same region (:func:`_grad_input`'s arithmetic)."""
    dtype = gy.dtype
    keep = cols is not None
    if cols is None:
        cols = scratch("cols", (g.parts, g.k, g.oh, g.ow), dtype)
        assert x is not None
    else:
        x = np.zeros((1, 1, 1, 1), dtype=dtype)  # unused: the kept columns are read
    buffers = grad_buffers(g, dtype, bias, w)
    in_parts(weight_parts, g.parts, x, gy, g.geo, g.padded("xpad", dtype), cols, keep, *buffers)
    return grad_results(g, buffers, bias)


def _in_order(partials: Array) -> Array:
    """The per-chunk partial sums added up: the chunks and this sum depend on the batch alone, so
    the result has the same bits at every thread count."""
    return partials.sum(axis=0)


def _grad_input(gy: Array, w: Array, g: _Geometry) -> Array:
    """Per sample, the columns' gradient ``w.T (K, C_out) @ gy_n (C_out, P)``, then col2im
    straight into NCHW."""
    w_t = np.ascontiguousarray(w.reshape(g.c_out, g.k).T)
    gx = np.empty(g.x_shape, dtype=w.dtype)
    dcols = scratch("dcols", (g.parts, g.k, g.oh, g.ow), w.dtype)
    in_parts(input_parts, g.parts, gy, w_t, g.geo, dcols, g.padded("gpad", w.dtype), gx)
    return gx


def conv2d_forward(x: Array, w: Array, stride: Pair, padding: Pair, dilation: Pair) -> Array:
    """:func:`gpunet.ops.conv2d.conv2d_forward` on NumPy arrays."""
    dtype = _dtype(x, w)
    if dtype is None:
        return reference.conv2d_forward(x, w, stride, padding, dilation)
    x, w = _c(x, dtype), _c(w, dtype)
    return _forward(x, w, None, _Geometry(x.shape, w.shape, stride, padding, dilation), False)[0]


def conv2d_backward_weight(x: Array, gy: Array, w_shape: tuple[int, ...], stride: Pair, padding: Pair,
                           dilation: Pair) -> Array:
    """:func:`gpunet.ops.conv2d.conv2d_backward_weight` on NumPy arrays."""
    dtype = _dtype(x, gy)
    if dtype is None:
        return reference.conv2d_backward_weight(x, gy, w_shape, stride, padding, dilation)
    x, gy = _c(x, dtype), _c(gy, dtype)
    return _grad_weight(x, gy, _Geometry(x.shape, tuple(w_shape), stride, padding, dilation), None, False)[0]


def conv2d_backward_input(gy: Array, w: Array, x_shape: tuple[int, ...], stride: Pair, padding: Pair,
                          dilation: Pair) -> Array:
    """:func:`gpunet.ops.conv2d.conv2d_backward_input` on NumPy arrays."""
    dtype = _dtype(gy, w)
    if dtype is None:
        return reference.conv2d_backward_input(gy, w, x_shape, stride, padding, dilation)
    gy, w = _c(gy, dtype), _c(w, dtype)
    return _grad_input(gy, w, _Geometry(tuple(x_shape), w.shape, stride, padding, dilation))


Needs = tuple[bool, bool, bool]


class CompiledConv2d:
    """The ``conv2d`` op's ``numpy-fast`` implementation (the interface of
    :class:`gpunet.ops.conv2d.Im2colConv2d`): the columns are kept for the weight gradient."""

    def forward(self, x: Array, w: Array, b: Array | None, stride: Pair, padding: Pair, dilation: Pair,
                save: bool, need_x_grad: bool) -> tuple[Array, Any]:
        dtype = _dtype(x, w) if b is None else _dtype(x, w, b)
        if dtype is None:
            y, state = reference.IM2COL.forward(x, w, b, stride, padding, dilation, save, need_x_grad)
            return y, (("reference", state) if save else None)
        x, w = _c(x, dtype), _c(w, dtype)
        b = _c(b, dtype) if b is not None else None
        g = _Geometry(x.shape, w.shape, stride, padding, dilation)
        y, cols = _forward(x, w, b, g, save)
        return y, ((cols, w, g) if save else None)

    def backward(self, gy: Array, state: Any, needs: Needs) -> tuple[Array | None, Array | None, Array | None]:
        if isinstance(state[0], str):  # ("reference", its state)
            return reference.IM2COL.backward(gy, state[1], needs)
        cols, w, g = state
        gy = _c(gy, w.dtype)
        g.parts = g._parts()  # the thread setting may differ from the forward's
        if needs[1]:  # the input gradient, if needed, in the weight gradient's region
            gw, gb, gx = _grad_weight(None, gy, g, cols, needs[2], w if needs[0] else None)
            return gx, gw, gb
        gx = _grad_input(gy, w, g) if needs[0] else None
        return gx, None, (gy.sum(axis=(0, 2, 3)) if needs[2] else None)


COMPILED = CompiledConv2d()
