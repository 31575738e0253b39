"""2-D convolution (NCHW) as one Function; the implementation comes from :mod:`gpunet.ops.registry`."""

from __future__ import annotations

from gpunet.autograd import Function, Tensor
from gpunet.ops import registry
from gpunet.ops.conv2d import Pair, check_conv2d_inputs, pair

__all__ = ["Conv2d", "conv2d", "pair"]


class Conv2d(Function):
    """``y = conv(x, w) + b``; backward gives the input, weight and bias gradients.

    The registry picks the implementation once per call (``ops.conv2d``: im2col + GEMM on NumPy
    and as the CuPy reference, the raw CUDA C or numba kernels on CuPy arrays).
    """

    def __init__(self, stride: Pair, padding: Pair, dilation: Pair) -> None:
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, x, w, b=None):
        check_conv2d_inputs(x, w, b, self.stride, self.padding, self.dilation)
        self.impl = registry.lookup("conv2d", registry.device_of(x))
        y, state = self.impl.forward(x, w, b, self.stride, self.padding, self.dilation,
                                     self.recording, self.needs_input_grad[0] if self.recording else False)
        self.save_for_backward(state, b is not None)
        return y

    def backward(self, gy):
        state, has_bias = self.saved
        needs = (*self.needs_input_grad, False)[:3]
        gx, gw, gb = self.impl.backward(gy, state, needs)
        return (gx, gw, gb) if has_bias else (gx, gw)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | Pair = 1,
           padding: int | Pair = 0, dilation: int | Pair = 1) -> Tensor:
    """2-D cross-correlation of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in, kh, kw).

    ``stride``, ``padding`` (zeros) and ``dilation`` are ints or ``(h, w)`` pairs; the output is
    ``(N, C_out, H_out, W_out)`` with ``H_out = (H + 2p - d(kh - 1) - 1) // s + 1`` (PyTorch's).
    """
    func = Conv2d(pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d", 0),
                  pair(dilation, "dilation", "conv2d"))
    return func(x, weight) if bias is None else func(x, weight, bias)
