"""conv2d on raw ``xp`` arrays (NCHW, weight ``(C_out, C_in, kh, kw)``): the reference path.

``stride``, ``padding`` and ``dilation`` are ``(h, w)`` pairs of ints. NumPy runs it on the CPU
and CuPy runs the same code on the GPU (the ``kernels="cupy"`` reference); ``gpunet.cuda``
provides kernels with these exact signatures.

Method: im2col into a contiguous ``(C_in*kh*kw, N*out_h*out_w)`` matrix from a strided view
(one copy whose inner loop runs along the output row), then a single 2-D GEMM. The channel-first
``(C, N, H, W)`` layout keeps every GEMM operand and the col2im scatter contiguous; the only
layout changes are the small transposes of ``x``, ``y`` and ``gy``.
"""

from __future__ import annotations

from typing import Any

from gpunet.backend import get_array_module

Array = Any
Pair = tuple[int, int]


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Length of one spatial output dimension."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _to_cnhw_padded(x: Array, padding: Pair) -> Array:
    """``x`` (N, C, H, W) as a contiguous zero-padded ``(C, N, H + 2ph, W + 2pw)`` array."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    ph, pw = padding
    out = xp.empty((c, n, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    if ph or pw:
        out[:, :, :ph] = 0
        out[:, :, h + ph:] = 0
        out[:, :, :, :pw] = 0
        out[:, :, :, w + pw:] = 0
    out[:, :, ph:ph + h, pw:pw + w] = x.transpose(1, 0, 2, 3)
    return out


def im2col(x: Array, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Array:
    """Columns ``(C*kh*kw, N*out_h*out_w)`` (C-contiguous) of the padded input windows."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    kh, kw = kernel
    out_h = output_size(h, kh, stride[0], padding[0], dilation[0])
    out_w = output_size(w, kw, stride[1], padding[1], dilation[1])
    xc = _to_cnhw_padded(x, padding)
    s_c, s_n, s_h, s_w = xc.strides
    view = xp.lib.stride_tricks.as_strided(
        xc, shape=(c, kh, kw, n, out_h, out_w),
        strides=(s_c, s_h * dilation[0], s_w * dilation[1], s_n, s_h * stride[0], s_w * stride[1]))
    cols = xp.empty((c, kh, kw, n, out_h, out_w), dtype=x.dtype)
    cols[...] = view
    return cols.reshape(c * kh * kw, n * out_h * out_w)


def col2im(cols: Array, x_shape: tuple[int, ...], kernel: Pair, out_hw: Pair, stride: Pair,
           padding: Pair, dilation: Pair) -> Array:
    """Scatter-add columns ``(C*kh*kw, N*out_h*out_w)`` back to an ``x_shape`` (NCHW) array."""
    xp = get_array_module(cols)
    n, c, h, w = x_shape
    kh, kw = kernel
    out_h, out_w = out_hw
    ph, pw = padding
    taps = cols.reshape(c, kh, kw, n, out_h, out_w)
    gx = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for p in range(kh):
        r0 = p * dilation[0]
        rows = slice(r0, r0 + stride[0] * (out_h - 1) + 1, stride[0])
        for q in range(kw):
            c0 = q * dilation[1]
            gx[:, :, rows, c0:c0 + stride[1] * (out_w - 1) + 1:stride[1]] += taps[:, p, q]
    return xp.ascontiguousarray(gx[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3))


def _as_rows(a: Array) -> Array:
    """NCHW ``a`` as a contiguous ``(C, N*H*W)`` matrix."""
    xp = get_array_module(a)
    n, c, h, w = a.shape
    return xp.ascontiguousarray(a.transpose(1, 0, 2, 3)).reshape(c, n * h * w)


def conv2d_forward(x: Array, w: Array, stride: Pair, padding: Pair, dilation: Pair) -> Array:
    """``y[n, o, i, j] = sum_{c,p,q} x_pad[n, c, i*s0 + p*d0, j*s1 + q*d1] * w[o, c, p, q]``."""
    xp = get_array_module(x, w)
    n = x.shape[0]
    c_out, _, kh, kw = w.shape
    out_h = output_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
    out_w = output_size(x.shape[3], kw, stride[1], padding[1], dilation[1])
    cols = im2col(x, (kh, kw), stride, padding, dilation)
    y = xp.matmul(xp.ascontiguousarray(w).reshape(c_out, -1), cols)  # (C_out, N*out_h*out_w)
    return xp.ascontiguousarray(y.reshape(c_out, n, out_h, out_w).transpose(1, 0, 2, 3))


def conv2d_backward_weight(x: Array, gy: Array, w_shape: tuple[int, ...], stride: Pair,
                           padding: Pair, dilation: Pair) -> Array:
    """Gradient w.r.t. the weight: ``(C_out, C_in, kh, kw)``."""
    xp = get_array_module(x, gy)
    c_out, _, kh, kw = w_shape
    cols = im2col(x, (kh, kw), stride, padding, dilation)
    gw = xp.matmul(_as_rows(gy), cols.T)  # (C_out, C_in*kh*kw)
    return gw.reshape(tuple(w_shape))


def conv2d_backward_input(gy: Array, w: Array, x_shape: tuple[int, ...], stride: Pair,
                          padding: Pair, dilation: Pair) -> Array:
    """Gradient w.r.t. the input: ``x_shape``; scatters each kernel tap back (col2im)."""
    xp = get_array_module(gy, w)
    c_out, _, kh, kw = w.shape
    gcols = xp.matmul(xp.ascontiguousarray(w).reshape(c_out, -1).T, _as_rows(gy))
    return col2im(gcols, tuple(x_shape), (kh, kw), (gy.shape[2], gy.shape[3]), stride, padding,
                  dilation)
