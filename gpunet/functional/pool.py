"""2-D max and average pooling (NCHW) as Functions; implementations from :mod:`gpunet.ops.pool`."""

from __future__ import annotations

from gpunet.autograd import Function, Tensor
from gpunet.ops import registry
from gpunet.ops.conv2d import Pair, pair
from gpunet.ops.pool import check_pool2d_input

__all__ = ["AvgPool2d", "MaxPool2d", "ReluAvgPool2d", "ReluMaxPool2d", "avg_pool2d", "max_pool2d",
           "relu_avg_pool2d", "relu_max_pool2d"]


class _Pool2d(Function):
    op = "pool2d"

    def __init__(self, kernel: Pair, stride: Pair, padding: Pair) -> None:
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x):
        out_hw = check_pool2d_input(self.op, x, self.kernel, self.stride, self.padding)
        self.impl = registry.lookup(self.op, registry.device_of(x))
        y, state = self.impl.forward(x, self.kernel, self.stride, self.padding, out_hw, self.recording)
        self.save_for_backward(state, x.shape)
        return y

    def backward(self, gy):
        state, x_shape = self.saved
        return self.impl.backward(gy, state, x_shape)


class MaxPool2d(_Pool2d):
    op = "max_pool2d"


class AvgPool2d(_Pool2d):
    op = "avg_pool2d"


class ReluMaxPool2d(_Pool2d):
    """``max_pool2d(relu(x))`` as one op (one pass each way on the CPU; no ReLU output kept)."""

    op = "relu_max_pool2d"


class ReluAvgPool2d(_Pool2d):
    """``avg_pool2d(relu(x))`` as one op (one pass each way on the CPU)."""

    op = "relu_avg_pool2d"


def _args(op: str, kernel_size: int | Pair, stride: int | Pair | None, padding: int | Pair
          ) -> tuple[Pair, Pair, Pair]:
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


def relu_max_pool2d(x: Tensor, kernel_size: int | Pair, stride: int | Pair | None = None,
                    padding: int | Pair = 0) -> Tensor:
    """``max_pool2d(relu(x), ...)`` fused: the same values and gradients, one op instead of two."""
    return ReluMaxPool2d(*_args("relu_max_pool2d", kernel_size, stride, padding))(x)


def relu_avg_pool2d(x: Tensor, kernel_size: int | Pair, stride: int | Pair | None = None,
                    padding: int | Pair = 0) -> Tensor:
    """``avg_pool2d(relu(x), ...)`` fused: the same values and gradients, one op instead of two."""
    return ReluAvgPool2d(*_args("relu_avg_pool2d", kernel_size, stride, padding))(x)
