"""conv2d on raw ``xp`` arrays (NCHW, weight ``(C_out, C_in, kh, kw)``): the reference path.

``stride``, ``padding`` and ``dilation`` are ``(h, w)`` pairs of ints. NumPy runs it on the CPU
and CuPy runs the same code on the GPU (the ``kernels="cupy"`` reference); ``gpunet.cuda``
provides kernels with these exact signatures.
"""

from __future__ import annotations

from typing import Any

from gpunet.backend import get_array_module

Array = Any
Pair = tuple[int, int]


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Length of one spatial output dimension."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _windows(xp_pad: Array, kh: int, kw: int, out_h: int, out_w: int, stride: Pair,
             dilation: Pair) -> Array:
    """A strided view ``(N, C, kh, kw, out_h, out_w)`` of the padded input (no copy)."""
    xp = get_array_module(xp_pad)
    n, c, _, _ = xp_pad.shape
    s0, s1, s2, s3 = xp_pad.strides
    shape = (n, c, kh, kw, out_h, out_w)
    strides = (s0, s1, s2 * dilation[0], s3 * dilation[1], s2 * stride[0], s3 * stride[1])
    return xp.lib.stride_tricks.as_strided(xp_pad, shape=shape, strides=strides)


def _pad(x: Array, padding: Pair) -> Array:
    xp = get_array_module(x)
    if padding == (0, 0):
        return x
    ph, pw = padding
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d_forward(x: Array, w: Array, stride: Pair, padding: Pair, dilation: Pair) -> Array:
    """``y[n, o, i, j] = sum_{c,p,q} x_pad[n, c, i*s0 + p*d0, j*s1 + q*d1] * w[o, c, p, q]``."""
    xp = get_array_module(x, w)
    n = x.shape[0]
    c_out, _, kh, kw = w.shape
    out_h = output_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
    out_w = output_size(x.shape[3], kw, stride[1], padding[1], dilation[1])
    cols = _windows(_pad(x, padding), kh, kw, out_h, out_w, stride, dilation)
    y = xp.tensordot(w, cols, axes=([1, 2, 3], [1, 2, 3]))  # (C_out, N, out_h, out_w)
    return xp.ascontiguousarray(y.transpose(1, 0, 2, 3)).reshape(n, c_out, out_h, out_w)


def conv2d_backward_weight(x: Array, gy: Array, w_shape: tuple[int, ...], stride: Pair,
                           padding: Pair, dilation: Pair) -> Array:
    """Gradient w.r.t. the weight: ``(C_out, C_in, kh, kw)``."""
    xp = get_array_module(x, gy)
    _, _, kh, kw = w_shape
    cols = _windows(_pad(x, padding), kh, kw, gy.shape[2], gy.shape[3], stride, dilation)
    gw = xp.tensordot(gy, cols, axes=([0, 2, 3], [0, 4, 5]))  # (C_out, C_in, kh, kw)
    return xp.ascontiguousarray(gw)


def conv2d_backward_input(gy: Array, w: Array, x_shape: tuple[int, ...], stride: Pair,
                          padding: Pair, dilation: Pair) -> Array:
    """Gradient w.r.t. the input: ``x_shape``; scatters each kernel tap back (col2im)."""
    xp = get_array_module(gy, w)
    n, c, h, wd = x_shape
    _, _, kh, kw = w.shape
    ph, pw = padding
    out_h, out_w = gy.shape[2], gy.shape[3]
    gcols = xp.tensordot(w, gy, axes=([0], [1]))  # (C_in, kh, kw, N, out_h, out_w)
    gx = xp.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=gy.dtype)
    for p in range(kh):
        r0 = p * dilation[0]
        rows = slice(r0, r0 + stride[0] * (out_h - 1) + 1, stride[0])
        for q in range(kw):
            c0 = q * dilation[1]
            cols = slice(c0, c0 + stride[1] * (out_w - 1) + 1, stride[1])
            gx[:, :, rows, cols] += gcols[:, p, q].transpose(1, 0, 2, 3)
    return gx[:, :, ph: ph + h, pw: pw + wd]
