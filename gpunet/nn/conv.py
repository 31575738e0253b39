"""Convolution and pooling layers: Conv2d, MaxPool2d, AvgPool2d (PyTorch's names and layouts)."""

from __future__ import annotations

import math

from gpunet.autograd import Tensor
from gpunet.functional.conv import conv2d
from gpunet.functional.pool import avg_pool2d, max_pool2d
from gpunet.nn import init
from gpunet.nn.module import Module, Parameter
from gpunet.ops.conv2d import pair

Size = int | tuple[int, int]


class Conv2d(Module):
    """2-D convolution over NCHW input; ``weight`` is ``(out_channels, in_channels, kh, kw)``.

    Weight and bias start at PyTorch's default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with
    ``fan_in = in_channels * kh * kw`` (``init_name`` picks another initialiser for the weight).
    """

    layer_count = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Size, stride: Size = 1,
                 padding: Size = 0, dilation: Size = 1, bias: bool = True, init_name: str = "default") -> None:
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"Conv2d: expected positive channel counts, got in={in_channels}, "
                             f"out={out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.padding = pair(padding, "padding", "Conv2d", 0)
        self.dilation = pair(dilation, "dilation", "Conv2d")
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = Parameter(init.initialize(init_name, shape))
        bound = 1.0 / math.sqrt(init.fans(shape)[0])
        self.bias = Parameter(init.uniform((out_channels,), bound)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.bias is not None}")


class _Pool(Module):
    def __init__(self, kernel_size: Size, stride: Size | None = None, padding: Size = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool):
    """Max over windows (no weights: not counted as a layer); ``stride`` defaults to the kernel."""

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool):
    """Mean over windows, zero padding counted; ``stride`` defaults to the kernel."""

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)
