"""2-D convolution (NCHW) as one Function; the implementation comes from :mod:`gpunet.ops.registry`."""

from __future__ import annotations

import numbers
from types import SimpleNamespace
from typing import Any

from gpunet.autograd import Function, OpError, Tensor
from gpunet.functional import math
from gpunet.ops import registry
from gpunet.ops.conv2d import Pair, check_conv2d_inputs, pair
from gpunet.ops.pool import check_pool2d_input

__all__ = ["Conv2d", "Conv2dReluPool2d", "conv2d", "conv2d_relu_pool2d", "pair", "same_padding"]


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


class Conv2dReluPool2d(Conv2d):
    """``pool(relu(conv(x, w) + b))`` as one op: the values and gradients of the three ops, in one
    region each way on the CPU (the conv output never made whole); ``pool`` is ``(kind, kernel,
    stride, padding)`` with kind ``"max"`` or ``"avg"``. The backward is Conv2d's (the op's
    implementation gives all three gradients)."""

    op = name = "conv2d_relu_pool2d"

    def __init__(self, stride: Pair, padding: Pair, dilation: Pair, pool: tuple[str, Pair, Pair, Pair]) -> None:
        super().__init__(stride, padding, dilation)
        self.pool = pool

    def forward(self, x, w, b=None):
        conv_hw = check_conv2d_inputs(x, w, b, self.stride, self.padding, self.dilation)
        conv_out = SimpleNamespace(ndim=4, dtype=x.dtype, shape=(x.shape[0], w.shape[0], *conv_hw))
        check_pool2d_input(self.op, conv_out, *self.pool[1:])
        self.impl = registry.lookup(self.op, registry.device_of(x))
        y, state = self.impl.forward(x, w, b, self.stride, self.padding, self.dilation, self.pool, self.recording,
                                     self.needs_input_grad[0] if self.recording else False)
        self.save_for_backward(state, b is not None)
        return y


def same_padding(op: str, kernel: Pair, stride: Pair, dilation: Pair) -> tuple[Pair, Pair]:
    """``padding="same"``: the ``(before, after)`` widths per spatial dim so that the output has the
    input's size; the odd extra goes after (PyTorch's choice). Stride must be 1, as in PyTorch."""
    if stride != (1, 1):
        raise OpError(f"{op}: expected stride 1 with padding='same' (PyTorch refuses strided 'same'), "
                      f"got stride {stride}")
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    before = (total[0] // 2, total[1] // 2)
    return before, (total[0] - before[0], total[1] - before[1])


def _padding(op: str, padding: Any, kernel: Pair, stride: Pair, dilation: Pair) -> tuple[Pair, Pair | None]:
    """``(symmetric padding, extra (bottom, right) widths or None)`` for an int, pair or string."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), None
        if padding != "same":
            raise OpError(f"{op}: expected padding as an int, a pair, 'same' or 'valid', got {padding!r}")
        before, after = same_padding(op, kernel, stride, dilation)
        extra = (after[0] - before[0], after[1] - before[1])
        return before, (extra if any(extra) else None)
    return pair(padding, "padding", op, 0), None


def _check_groups(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, groups: Any) -> int:
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise OpError(f"{op}: expected groups as an int >= 1, got {groups!r}")
    groups = int(groups)
    c_in = x.shape[1] if x.ndim == 4 else None
    c_out = weight.shape[0] if weight.ndim == 4 else None
    if groups == 1 or c_in is None or c_out is None:
        return groups  # the shared check names a wrong rank or channel count
    if c_in % groups or c_out % groups:
        raise OpError(f"{op}: expected in_channels and out_channels divisible by groups={groups}, got "
                      f"{c_in} and {c_out}")
    if weight.shape[1] * groups != c_in:
        raise OpError(f"{op}: expected weight of shape ({c_out}, {c_in // groups}, kh, kw) for {c_in} input "
                      f"channels in {groups} groups, got {weight.shape}")
    return groups


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | Pair = 1,
           padding: int | Pair | str = 0, dilation: int | Pair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in / groups, kh, kw).

    ``stride``, ``padding`` (zeros) and ``dilation`` are ints or ``(h, w)`` pairs; the output is
    ``(N, C_out, H_out, W_out)`` with ``H_out = (H + 2p - d(kh - 1) - 1) // s + 1`` (PyTorch's).
    ``padding="same"`` (stride 1) keeps H and W, the odd extra row/column going after;
    ``"valid"`` is 0.

    ``groups=g`` splits the input channels and the filters into ``g`` groups, group ``i``'s
    filters seeing only group ``i``'s channels (``groups=C_in`` is a depthwise convolution). The
    groups run as ``g`` calls of the registered conv2d op joined by ``cat``: every implementation
    (numpy, cupy, raw, numba) serves them, as the kernels themselves know no groups.
    """
    op = "conv2d"
    stride_p, dilation_p = pair(stride, "stride", op), pair(dilation, "dilation", op)
    kernel = (int(weight.shape[2]), int(weight.shape[3])) if weight.ndim == 4 else (1, 1)
    padding_p, extra = _padding(op, padding, kernel, stride_p, dilation_p)
    groups = _check_groups(op, x, weight, bias, groups)
    if extra is not None and x.ndim == 4:
        x = math.pad(x, (0, extra[1], 0, extra[0]))
    if groups == 1:
        func = Conv2d(stride_p, padding_p, dilation_p)
        return func(x, weight) if bias is None else func(x, weight, bias)
    c_in, c_out = x.shape[1] // groups, weight.shape[0] // groups
    outs = []
    for g in range(groups):
        func = Conv2d(stride_p, padding_p, dilation_p)
        xg, wg = x[:, g * c_in:(g + 1) * c_in], weight[g * c_out:(g + 1) * c_out]
        outs.append(func(xg, wg) if bias is None else func(xg, wg, bias[g * c_out:(g + 1) * c_out]))
    return math.cat(outs, dim=1)


def conv2d_relu_pool2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | Pair = 1,
                       padding: int | Pair | str = 0, dilation: int | Pair = 1, *, pool: str = "max",
                       pool_kernel: int | Pair = 2, pool_stride: int | Pair | None = None,
                       pool_padding: int | Pair = 0) -> Tensor:
    """``max_pool2d(relu(conv2d(x, weight, bias, stride, padding, dilation)), pool_kernel,
    pool_stride, pool_padding)`` (``pool="avg"``: ``avg_pool2d``) as one op: the same values and
    gradients, one region each way on the CPU instead of three ops. ``pool_stride`` defaults to
    the pooling kernel; ``groups`` is 1 (call the three ops for grouped convolutions)."""
    op = Conv2dReluPool2d.op
    if pool not in ("max", "avg"):
        raise OpError(f"{op}: expected pool 'max' or 'avg', got {pool!r}")
    stride_p, dilation_p = pair(stride, "stride", op), pair(dilation, "dilation", op)
    kernel = (int(weight.shape[2]), int(weight.shape[3])) if weight.ndim == 4 else (1, 1)
    padding_p, extra = _padding(op, padding, kernel, stride_p, dilation_p)
    pool_kernel_p = pair(pool_kernel, "pool_kernel", op)
    pool_stride_p = pool_kernel_p if pool_stride is None else pair(pool_stride, "pool_stride", op)
    pool_padding_p = pair(pool_padding, "pool_padding", op, 0)
    if extra is not None:  # asymmetric "same" padding: the three ops
        from gpunet.functional import pool as pooling

        fused = pooling.relu_max_pool2d if pool == "max" else pooling.relu_avg_pool2d
        return fused(conv2d(x, weight, bias, stride_p, padding, dilation_p), pool_kernel_p, pool_stride_p,
                     pool_padding_p)
    func = Conv2dReluPool2d(stride_p, padding_p, dilation_p, (pool, pool_kernel_p, pool_stride_p, pool_padding_p))
    return func(x, weight) if bias is None else func(x, weight, bias)
