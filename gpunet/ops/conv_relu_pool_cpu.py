"""The NumPy fast path (``numpy-fast``) of ``conv2d_relu_pool2d``: ``pool(relu(conv2d(x, w) + b))``
in one numba region each way, the convolution's output never made whole.

Per sample, inside the region of :mod:`gpunet.ops.conv2d_cpu` (the same columns, GEMMs and
chunks claimed by the threads), its ``(C_out, OH, OW)`` output lives in the thread's scratch
between its GEMM and its ReLU-pooling (:mod:`gpunet.ops.relu_pool_cpu`'s window loops, on that
one sample), and in the backward between the pooling's gradient and the gradient GEMMs. Against
the two ops (conv2d, then ``relu_max_pool2d``), the step saves writing and reading back the whole
conv output (LeNet's conv1: 1.2 MB a step), two regions and one Function each way.

The pooling's geometry picks its loop at compile time by the length of the ``pool`` tuple (as
``geo`` does the columns kernel): ``(0,)`` max 2x2 stride 2 unpadded, ``(kh, kw, sh, sw, ph, pw)``
max, ``(kh, kw, sh, sw, ph, pw, 0)`` average (``scale`` = 1 / (kh * kw) in the array's dtype).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba.extending import overload

from gpunet.ops import conv2d_cpu as conv
from gpunet.ops import relu_pool_cpu as relu_pool
from gpunet.ops.conv2d import Pair, output_size
from gpunet.ops.regions_cpu import claim, in_parts, scratch

Array = Any
#: ``(kind, kernel, stride, padding)`` of the pooling: kind ``"max"`` or ``"avg"``.
PoolSpec = tuple[str, Pair, Pair, Pair]


def sample_pool(z, pool, scale, y, aux):  # pragma: no cover - a stub: numba compiles the overload
    """One sample's pooling of ``relu(z)`` (``z``, ``y``, ``aux``: ``(1, C, ...)`` views)."""
    raise NotImplementedError("compiled code only")


def sample_unpool(gy, aux, pool, scale, gz):  # pragma: no cover - a stub: numba compiles the overload
    """One sample's ``gz`` (C, OH*OW) from its pooled gradient ``gy`` (1, C, PH, PW)."""
    raise NotImplementedError("compiled code only")


@overload(sample_pool)
def _sample_pool(z, pool, scale, y, aux):  # pragma: no cover - compiled
    if len(pool) == 1:
        def max_2x2(z, pool, scale, y, aux):
            relu_pool.max_forward_2x2_part(z, y, aux, 0, 1)
        return max_2x2
    if len(pool) == 6:
        def max_any(z, pool, scale, y, aux):
            kh, kw, sh, sw, ph, pw = pool
            relu_pool.max_forward_part(z, kh, kw, sh, sw, ph, pw, y, aux, 0, 1)
        return max_any

    def avg(z, pool, scale, y, aux):
        kh, kw, sh, sw, ph, pw, _ = pool
        relu_pool.avg_forward_part(z, kh, kw, sh, sw, ph, pw, scale, y, aux, 0, 1)
    return avg


@overload(sample_unpool)
def _sample_unpool(gy, aux, pool, scale, gz):  # pragma: no cover - compiled
    if len(pool) in (1, 6):
        def max_any(gy, aux, pool, scale, gz):
            relu_pool.max_backward_part(gy, aux, gz.reshape(1, gz.shape[0], gz.shape[1]), 0, 1)
        return max_any

    def avg(gy, aux, pool, scale, gz):
        kh, kw, sh, sw, ph, pw, _ = pool
        gz4 = gz.reshape(1, gz.shape[0], aux.shape[2], aux.shape[3])
        relu_pool.avg_backward_part(gy, aux, kh, kw, sh, sw, ph, pw, scale, gz4, 0, 1)
    return avg


@numba.njit(cache=True, nogil=True, inline="always")
def forward_part(x, w2, bias, geo, xpad, cols, keep, zbuf, pool, scale, y, aux, t, lo,
                 hi):  # pragma: no cover - compiled
    """Samples ``lo:hi``: the conv output into the thread's ``zbuf[t]``, then its ReLU-pooling
    into ``y`` and ``aux`` (the argmax, or the ``> 0`` mask)."""
    c_out, oh, ow = w2.shape[0], cols.shape[2], cols.shape[3]
    z = zbuf[t]
    for b in range(lo, hi):
        conv.sample_forward(x[b], w2, bias, geo, xpad[t], cols[b] if keep else cols[t], z)
        sample_pool(z.reshape(1, c_out, oh, ow), pool, scale, y[b:b + 1], aux[b:b + 1])


@numba.njit(cache=True, nogil=True, inline="always")
def grads_part(gy, aux, pool, scale, cols, zbuf, rows, tmp, gw_chunks, gb_chunks, need_x, w_t, dcols, gpad, gx,
               geo, t, chunk, lo, hi):  # pragma: no cover - compiled
    """Samples ``lo:hi``: the conv output's gradient into ``zbuf[t]`` from the pooled one, then
    the weight, bias and (``need_x``) input gradients from it (:func:`conv2d_cpu.sample_grads`)."""
    acc, gb = conv.chunk_sums(gw_chunks, gb_chunks, chunk, hi == lo)
    gz = zbuf[t]
    for b in range(lo, hi):
        sample_unpool(gy[b:b + 1], aux[b:b + 1], pool, scale, gz)
        conv.sample_grads(gz, cols[b], rows[t], tmp[t], acc, b == lo, gb, need_x, w_t, dcols[t], geo, gpad[t],
                          gx[b if need_x else 0])


@numba.njit(parallel=True, cache=True, nogil=True)
def forward_parts(x, w2, bias, geo, xpad, cols, keep, zbuf, pool, scale, y, aux,
                  parts):  # pragma: no cover - compiled
    """:func:`forward_part` over the batch's chunks, claimed by ``parts`` threads."""
    counter = np.zeros(1, np.int64)
    for t in numba.prange(parts):
        chunk, lo, hi = claim(counter, x.shape[0])
        while chunk >= 0:
            forward_part(x, w2, bias, geo, xpad, cols, keep, zbuf, pool, scale, y, aux, t, lo, hi)
            chunk, lo, hi = claim(counter, x.shape[0])


@numba.njit(parallel=True, cache=True, nogil=True)
def grads_parts(gy, aux, pool, scale, cols, zbuf, rows, tmp, gw_chunks, gb_chunks, need_x, w_t, dcols, gpad, gx,
                geo, parts):  # pragma: no cover - compiled
    """:func:`grads_part` over the batch's chunks, claimed by ``parts`` threads."""
    counter = np.zeros(1, np.int64)
    for t in numba.prange(parts):
        chunk, lo, hi = claim(counter, gy.shape[0])
        while chunk >= 0:
            grads_part(gy, aux, pool, scale, cols, zbuf, rows, tmp, gw_chunks, gb_chunks, need_x, w_t, dcols, gpad,
                       gx, geo, t, chunk, lo, hi)
            chunk, lo, hi = claim(counter, gy.shape[0])


def pool_output(conv_hw: Pair, spec: PoolSpec) -> Pair:
    """The pooled ``(PH, PW)`` of a ``conv_hw`` conv output."""
    _, kernel, stride, padding = spec
    return (output_size(conv_hw[0], kernel[0], stride[0], padding[0], 1),
            output_size(conv_hw[1], kernel[1], stride[1], padding[1], 1))


def _pool_args(spec: PoolSpec, dtype: Any) -> tuple[tuple[int, ...], Any]:
    kind, kernel, stride, padding = spec
    geometry = (*kernel, *stride, *padding)
    if kind == "avg":
        return (*geometry, 0), dtype.type(1.0 / (kernel[0] * kernel[1]))
    if kernel == stride == (2, 2) and padding == (0, 0):
        return (0,), dtype.type(0)
    return geometry, dtype.type(0)


def forward(x: Array, w: Array, b: Array | None, stride: Pair, padding: Pair, dilation: Pair, spec: PoolSpec,
            save: bool) -> tuple[Array, Any]:
    """``(y, state)`` for float32/float64 NumPy arrays of one dtype (contiguous)."""
    g = conv._Geometry(x.shape, w.shape, stride, padding, dilation)
    dtype = w.dtype
    pooled = pool_output((g.oh, g.ow), spec)
    y = np.empty((g.n, g.c_out, *pooled), dtype=dtype)
    aux = (np.empty((g.n, g.c_out, *pooled), dtype=np.int32) if spec[0] == "max"
           else np.empty((g.n, g.c_out, g.oh, g.ow), dtype=np.bool_))
    pool, scale = _pool_args(spec, dtype)
    cols = (np.empty((g.n, g.k, g.oh, g.ow), dtype=dtype) if save
            else scratch("cols", (g.parts, g.k, g.oh, g.ow), dtype))
    zbuf = scratch("conv_relu_pool_z", (g.parts, g.c_out, g.pixels), dtype)
    bias = b if b is not None else np.zeros(0, dtype=dtype)
    in_parts(forward_parts, g.parts, x, w.reshape(g.c_out, g.k), bias, g.geo, g.padded("xpad", dtype), cols, save,
             zbuf, pool, scale, y, aux)
    return y, ((cols, w, g, aux, pool, scale, b is not None) if save else None)


def backward(gy: Array, state: Any, needs: tuple[bool, bool, bool]) -> tuple[Array | None, Array | None, Array | None]:
    """``(gx, gw, gb)`` (``None`` where not needed) from :func:`forward`'s state."""
    cols, w, g, aux, pool, scale, has_bias = state
    g.parts = g._parts()  # the thread setting may differ from the forward's
    gy = np.ascontiguousarray(gy, dtype=w.dtype)
    bias = needs[2] and has_bias
    buffers = conv.grad_buffers(g, w.dtype, bias, w if needs[0] else None)
    zbuf = scratch("conv_relu_pool_z", (g.parts, g.c_out, g.pixels), w.dtype)
    rows, tmp, gw_chunks, gb_chunks, need_x, w_t, dcols, gpad, gx = buffers
    in_parts(grads_parts, g.parts, gy, aux, pool, scale, cols, zbuf, rows, tmp, gw_chunks, gb_chunks, need_x, w_t,
             dcols, gpad, gx, g.geo)
    gw, gb, gx_out = conv.grad_results(g, buffers, bias)
    return gx_out, (gw if needs[1] else None), gb
