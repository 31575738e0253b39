"""Convolution and pooling layers: Conv1d, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d
(PyTorch's names and layouts)."""

from __future__ import annotations

import math
from typing import Any

from gpunet.autograd import Tensor
from gpunet.functional.adaptive import adaptive_avg_pool2d, output_hw
from gpunet.functional.conv import conv2d, conv2d_relu_pool2d
from gpunet.functional.pool import avg_pool2d, max_pool2d, relu_avg_pool2d, relu_max_pool2d
from gpunet.nn import init, validate
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
                 padding: Size | str = 0, dilation: Size = 1, groups: int = 1, bias: bool = True,
                 init_name: str = "default") -> None:
        super().__init__()
        in_channels = validate.size("Conv2d", "in_channels", in_channels)
        out_channels = validate.size("Conv2d", "out_channels", out_channels)
        validate.flag("Conv2d", "bias", bias)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.dilation = pair(dilation, "dilation", "Conv2d")
        self.padding = _layer_padding("Conv2d", padding, self.stride, pair)
        self.groups = _groups("Conv2d", groups, in_channels, out_channels)
        shape = (out_channels, in_channels // self.groups, *self.kernel_size)
        self.weight = Parameter(init.initialize(init_name, shape))
        bound = 1.0 / math.sqrt(init.fans(shape)[0])
        self.bias = Parameter(init.uniform((out_channels,), bound)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        validate.check_input("Conv2d", x, self.weight)
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def with_relu_pool(self, x: Tensor, pool: MaxPool2d | AvgPool2d) -> Tensor:
        """``pool(relu(self(x)))`` as one fused op (what a container calls for this layer, a
        ReLU and a pooling layer); a grouped convolution runs as itself, then the fused
        ReLU-pooling."""
        if self.groups != 1:
            return pool.after_relu(self(x))
        validate.check_input("Conv2d", x, self.weight)
        return conv2d_relu_pool2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                                  pool=pool.kind, pool_kernel=pool.kernel_size, pool_stride=pool.stride,
                                  pool_padding=pool.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={self.bias is not None}")


def _layer_padding(owner: str, padding: Any, stride: Any, parse: Any) -> Any:
    """An int/pair (parsed) or PyTorch's ``'same'`` (stride 1 only) / ``'valid'``."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"{owner}: expected padding as an int, 'same' or 'valid', got {padding!r}")
        if padding == "same" and any(s != 1 for s in stride):
            raise ValueError(f"{owner}: expected stride 1 with padding='same', got stride {stride}")
        return padding
    return parse(padding, "padding", owner, 0)


def _groups(owner: str, groups: Any, in_channels: int, out_channels: int) -> int:
    groups = validate.size(owner, "groups", groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{owner}: expected in_channels and out_channels divisible by groups={groups}, "
                         f"got {in_channels} and {out_channels}")
    return groups


def _single(value: Any, name: str, owner: str, minimum: int = 1) -> int:
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(items) != 1:
        raise ValueError(f"{owner}: expected {name} as an int or a 1-tuple, got {value!r}")
    return validate.size(owner, name, items[0], minimum)


class Conv1d(Module):
    """1-D convolution over ``(N, C_in, L)`` (or unbatched ``(C_in, L)``) input; ``weight`` is
    ``(out_channels, in_channels, k)`` as PyTorch. It runs the registered conv2d op on a height-1
    view: ``(N, C, 1, L)`` with a ``(C_out, C_in, 1, k)`` kernel."""

    layer_count = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int], stride: int = 1,
                 padding: int | str = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 init_name: str = "default") -> None:
        super().__init__()
        self.in_channels = validate.size("Conv1d", "in_channels", in_channels)
        self.out_channels = validate.size("Conv1d", "out_channels", out_channels)
        self.kernel_size = (_single(kernel_size, "kernel_size", "Conv1d"),)
        self.stride = (_single(stride, "stride", "Conv1d"),)
        self.padding = _layer_padding("Conv1d", padding, self.stride,
                                      lambda v, n, o, m: (_single(v, n, o, m),))
        self.dilation = (_single(dilation, "dilation", "Conv1d"),)
        self.groups = _groups("Conv1d", groups, self.in_channels, self.out_channels)
        validate.flag("Conv1d", "bias", bias)
        shape = (self.out_channels, self.in_channels // self.groups, self.kernel_size[0])
        self.weight = Parameter(init.initialize(init_name, shape))
        bound = 1.0 / math.sqrt(init.fans(shape)[0])
        self.bias = Parameter(init.uniform((self.out_channels,), bound)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        validate.check_input("Conv1d", x, self.weight)
        if x.ndim not in (2, 3) or x.shape[-2] != self.in_channels:
            raise ValueError(f"Conv1d: expected input (N, {self.in_channels}, L) or ({self.in_channels}, L), "
                             f"got {x.shape}")
        unbatched = x.ndim == 2
        x4 = x.reshape(1 if unbatched else x.shape[0], self.in_channels, 1, x.shape[-1])
        w4 = self.weight.reshape(self.out_channels, self.in_channels // self.groups, 1, self.kernel_size[0])
        padding = self.padding if isinstance(self.padding, str) else (0, self.padding[0])
        y = conv2d(x4, w4, self.bias, (1, self.stride[0]), padding, (1, self.dilation[0]), self.groups)
        n, c, _, length = y.shape
        return y.reshape(c, length) if unbatched else y.reshape(n, c, length)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={self.bias is not None}")


class _Pool(Module):
    def __init__(self, kernel_size: Size, stride: Size | None = None, padding: Size = 0) -> None:
        super().__init__()
        owner = type(self).__name__
        pair(kernel_size, "kernel_size", owner)
        if stride is not None:
            pair(stride, "stride", owner)
        pair(padding, "padding", owner, 0)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool):
    """Max over windows (no weights: not counted as a layer); ``stride`` defaults to the kernel."""

    kind = "max"

    def forward(self, x: Tensor) -> Tensor:
        validate.check_input("MaxPool2d", x)
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def after_relu(self, x: Tensor) -> Tensor:
        """``self(relu(x))`` as one fused op (what a container calls for ReLU then this pool)."""
        validate.check_input("MaxPool2d", x)
        return relu_max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool):
    """Mean over windows, zero padding counted; ``stride`` defaults to the kernel."""

    kind = "avg"

    def forward(self, x: Tensor) -> Tensor:
        validate.check_input("AvgPool2d", x)
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def after_relu(self, x: Tensor) -> Tensor:
        """``self(relu(x))`` as one fused op (what a container calls for ReLU then this pool)."""
        validate.check_input("AvgPool2d", x)
        return relu_avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Average-pool to ``output_size`` (an int, a pair, ``None`` keeps that axis) with PyTorch's bins."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        try:
            self.output_size = output_hw("AdaptiveAvgPool2d", output_size)
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    def forward(self, x: Tensor) -> Tensor:
        validate.check_input("AdaptiveAvgPool2d", x)
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
