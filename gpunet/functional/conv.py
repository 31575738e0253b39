"""2-D convolution (NCHW) as one Function; the hot ops come from ``gpunet.cuda.dispatch``."""

from __future__ import annotations

import numbers
from typing import Any

from gpunet import backend
from gpunet.autograd import Function, OpError, Tensor, is_grad_enabled
from gpunet.cuda import dispatch
from gpunet.functional import conv_impl
from gpunet.functional.conv_impl import output_size

Pair = tuple[int, int]


def pair(value: int | tuple[int, int] | list[int], name: str, op: str, minimum: int = 1) -> Pair:
    """``value`` as an ``(h, w)`` pair of ints ``>= minimum`` (OpError otherwise)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
        raise OpError(f"{op}: expected {name} as an int or a pair of ints, got {value!r}")
    items = (int(items[0]), int(items[1]))
    if any(v < minimum for v in items):
        raise OpError(f"{op}: expected {name} >= {minimum}, got {value!r}")
    return items  # type: ignore[return-value]


class Conv2d(Function):
    """``y = conv(x, w) + b``; backward gives the input, weight and bias gradients.

    When dispatch picks the reference implementation (NumPy, or CuPy with ``kernels="cupy"``)
    the im2col columns of the forward pass are kept for the weight gradient instead of being
    rebuilt, and the output gradient is laid out once for both gradients; other
    implementations are called through their hot-op signatures.
    """

    def __init__(self, stride: Pair, padding: Pair, dilation: Pair) -> None:
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def __call__(self, x: Any, *rest: Any) -> Any:
        self.x_needs_grad = not isinstance(x, Tensor) or x.requires_grad  # wide columns pay off in col2im
        return super().__call__(x, *rest)

    def forward(self, x, w, b=None):
        check_conv2d_inputs(x, w, b, self.stride, self.padding, self.dilation)
        self.x, self.w, self.has_bias, self.cols = x, w, b is not None, None
        forward = dispatch.lookup("conv2d_forward", backend.is_cupy_array(x))
        if forward is conv_impl.conv2d_forward and is_grad_enabled():
            self.geometry = conv_impl.Geometry(x.shape, w.shape[2:], self.stride, self.padding, self.dilation,
                                               wide=getattr(self, "x_needs_grad", True))
            self.cols = conv_impl.im2col(x, self.geometry)
            return conv_impl.forward_from_cols(self.cols, w, self.geometry, b)
        y = forward(x, w, self.stride, self.padding, self.dilation)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        on_gpu = backend.is_cupy_array(gy)
        args = (self.stride, self.padding, self.dilation)
        need_x, need_w, need_b = (*getattr(self, "needs_grad", ()), True, True, True)[:3]
        backward_input = dispatch.lookup("conv2d_backward_input", on_gpu)
        backward_weight = dispatch.lookup("conv2d_backward_weight", on_gpu)
        gx = gw = None
        rows = conv_impl.gy_rows(gy, self.geometry) if self.cols is not None else None
        if need_x:
            if backward_input is conv_impl.conv2d_backward_input and rows is not None:
                gx = conv_impl.backward_input_from_rows(rows, self.w, self.geometry)
            else:
                gx = backward_input(gy, self.w, self.x.shape, *args)
        if need_w:
            if backward_weight is conv_impl.conv2d_backward_weight and rows is not None:
                gw = conv_impl.backward_weight_from_cols(self.cols, rows, self.w.shape)
            else:
                gw = backward_weight(self.x, gy, self.w.shape, *args)
        if not self.has_bias:
            return gx, gw
        if not need_b:
            return gx, gw, None
        return gx, gw, rows.sum(axis=1) if rows is not None else gy.sum(axis=(0, 2, 3))


def check_conv2d_inputs(x: Any, w: Any, b: Any, stride: Pair, padding: Pair, dilation: Pair) -> None:
    """Raise OpError naming what is wrong with a conv2d call (expected vs got)."""
    if x.ndim != 4:
        raise OpError(f"conv2d: expected input of 4 dimensions (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise OpError(f"conv2d: expected weight of 4 dimensions (C_out, C_in, kh, kw), got shape {w.shape}")
    if x.dtype.kind != "f" or w.dtype != x.dtype:
        raise OpError(f"conv2d: expected floating input and weight of the same dtype, got input "
                      f"{x.dtype} and weight {w.dtype}")
    if x.shape[1] != w.shape[1]:
        raise OpError(f"conv2d: weight {w.shape} expects {w.shape[1]} input channels, got input "
                      f"{x.shape} with {x.shape[1]}")
    if b is not None and (b.shape != (w.shape[0],) or b.dtype != x.dtype):
        raise OpError(f"conv2d: expected bias of shape ({w.shape[0]},) and dtype {x.dtype}, got "
                      f"{b.shape} {b.dtype}")
    out = [output_size(x.shape[2 + i], w.shape[2 + i], stride[i], padding[i], dilation[i]) for i in (0, 1)]
    if min(out) <= 0 or min(w.shape) <= 0:
        raise OpError(f"conv2d: output size must be positive, got {tuple(out)} for input {x.shape}, "
                      f"weight {w.shape}, stride {stride}, padding {padding}, dilation {dilation}")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | Pair = 1,
           padding: int | Pair = 0, dilation: int | Pair = 1) -> Tensor:
    """2-D cross-correlation of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in, kh, kw).

    ``stride``, ``padding`` (zeros) and ``dilation`` are ints or ``(h, w)`` pairs; the output is
    ``(N, C_out, H_out, W_out)`` with ``H_out = (H + 2p - d(kh - 1) - 1) // s + 1`` (PyTorch's).
    """
    func = Conv2d(pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d", 0),
                  pair(dilation, "dilation", "conv2d"))
    return func(x, weight) if bias is None else func(x, weight, bias)
