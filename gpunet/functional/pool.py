"""2-D max and average pooling (NCHW), with backward.

The array code loops over the ``kh*kw`` kernel taps, each a strided view of the (padded) input
the size of the output, so the work is a few whole-array operations whatever the batch size;
it runs on CuPy and NumPy alike. Max pooling of NumPy arrays uses the numba kernels of
:mod:`gpunet.functional.pool_cpu` instead (one pass each way).
Max pooling pads with ``-inf`` and sends the gradient to the first maximum of each window
(PyTorch's rule); average pooling pads with zeros and counts them (``count_include_pad=True``).
"""

from __future__ import annotations

from typing import Any

import numpy

from gpunet.autograd import Function, OpError, Tensor
from gpunet.functional import pool_cpu
from gpunet.functional.conv import pair
from gpunet.functional.conv_impl import output_size

Pair = tuple[int, int]


class _Pool2d(Function):
    op = "pool2d"
    pad_value = 0.0

    def __init__(self, kernel: Pair, stride: Pair, padding: Pair) -> None:
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def _check(self, x: Any) -> None:
        """Validate ``x``; set ``x_shape`` and ``out_hw``."""
        if x.ndim != 4:
            raise OpError(f"{self.op}: expected input of 4 dimensions (N, C, H, W), got shape {x.shape}")
        if x.dtype.kind != "f":
            raise OpError(f"{self.op}: expected a floating input, got dtype {x.dtype}")
        (kh, kw), (ph, pw) = self.kernel, self.padding
        if ph > kh // 2 or pw > kw // 2:
            raise OpError(f"{self.op}: expected padding <= kernel // 2, got padding {self.padding} for "
                          f"kernel {self.kernel}")
        self.out_hw = tuple(output_size(x.shape[2 + i], self.kernel[i], self.stride[i], self.padding[i], 1)
                            for i in (0, 1))
        if min(self.out_hw) <= 0:
            raise OpError(f"{self.op}: output size must be positive, got {self.out_hw} for input "
                          f"{x.shape}, kernel {self.kernel}, stride {self.stride}, padding {self.padding}")
        self.x_shape = x.shape

    def _taps(self, x: Any) -> list[Any]:
        """One strided view ``(N, C, out_h, out_w)`` of ``x`` padded per kernel tap."""
        ph, pw = self.padding
        if ph or pw:
            x = self.xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=self.pad_value)
        return self._views(x)

    def _views(self, xpad: Any) -> list[Any]:
        (kh, kw), (sh, sw), (oh, ow) = self.kernel, self.stride, self.out_hw
        return [xpad[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw]
                for p in range(kh) for q in range(kw)]

    def _scatter(self, grads: list[Any], dtype: Any) -> Any:
        """Sum per-tap gradients back into an input-shaped array."""
        n, c, h, w = self.x_shape
        ph, pw = self.padding
        gx = self.xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dtype)
        tiled = self.stride == self.kernel
        for tap, g in zip(self._views(gx), grads):
            if tiled:
                tap[...] = g  # windows do not overlap
            else:
                tap += g
        return gx if ph == pw == 0 else gx[:, :, ph:ph + h, pw:pw + w]


class MaxPool2d(_Pool2d):
    op = "max_pool2d"
    pad_value = -float("inf")
    compiled = True  # NumPy input: the numba kernels (False: the array code, as on CuPy)

    def forward(self, x):
        self._check(x)
        if self.compiled and isinstance(x, numpy.ndarray):
            y, self.flat_index = pool_cpu.forward(x, self.kernel, self.stride, self.padding, self.out_hw)
            return y
        self.flat_index = None
        taps = self._taps(x)
        y = taps[0].copy()
        index = self.xp.zeros(y.shape, dtype="int8" if len(taps) < 128 else "int32")
        for t, tap in enumerate(taps[1:], start=1):
            self.xp.copyto(index, t, where=tap > y)
            self.xp.maximum(y, tap, out=y)
        self.index = index
        return y

    def backward(self, gy):
        if self.flat_index is not None:
            return pool_cpu.backward(gy, self.flat_index, self.x_shape)
        zero = gy.dtype.type(0)
        kh, kw = self.kernel
        return self._scatter([self.xp.where(self.index == t, gy, zero) for t in range(kh * kw)], gy.dtype)


class AvgPool2d(_Pool2d):
    op = "avg_pool2d"

    def forward(self, x):
        self._check(x)
        taps = self._taps(x)
        y = taps[0].copy()
        for tap in taps[1:]:
            y += tap
        y *= x.dtype.type(1.0 / len(taps))
        return y

    def backward(self, gy):
        kh, kw = self.kernel
        g = gy * gy.dtype.type(1.0 / (kh * kw))
        return self._scatter([g] * (kh * kw), gy.dtype)


def _args(op: str, kernel_size: Any, stride: Any, padding: Any) -> tuple[Pair, Pair, Pair]:
    kernel = pair(kernel_size, "kernel_size", op)
    return kernel, kernel if stride is None else pair(stride, "stride", op), pair(padding, "padding", op, 0)


def max_pool2d(x: Tensor, kernel_size: int | Pair, stride: int | Pair | None = None,
               padding: int | Pair = 0) -> Tensor:
    """Max over ``kernel_size`` windows of ``x`` (N, C, H, W); ``stride`` defaults to the kernel."""
    return MaxPool2d(*_args("max_pool2d", kernel_size, stride, padding))(x)


def avg_pool2d(x: Tensor, kernel_size: int | Pair, stride: int | Pair | None = None,
               padding: int | Pair = 0) -> Tensor:
    """Mean over ``kernel_size`` windows of ``x``; zero padding counts (count_include_pad=True)."""
    return AvgPool2d(*_args("avg_pool2d", kernel_size, stride, padding))(x)
