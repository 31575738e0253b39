"""2-D max and average pooling (NCHW) on raw arrays: the spec, its check, the implementations.

The reference loops over the ``kh*kw`` kernel taps, each a strided view of the (padded) input
the size of the output, so the work is a few whole-array operations whatever the batch size;
it runs on CuPy and NumPy alike (``numpy-ref``, ``cupy``). Max pooling of NumPy arrays has a
compiled fast path (``numpy-fast``, :mod:`gpunet.ops.pool_cpu`: one pass each way).
Max pooling pads with ``-inf`` and sends the gradient to the first maximum of each window
(PyTorch's rule); average pooling pads with zeros and counts them (``count_include_pad=True``).

An implementation has ``forward(x, kernel, stride, padding, out_hw, save) -> (y, state)`` and
``backward(gy, state, x_shape) -> gx``.
"""

from __future__ import annotations

from typing import Any

from gpunet.autograd import OpError
from gpunet.backend import get_array_module
from gpunet.ops import pool_cpu
from gpunet.ops.conv2d import output_size

Array = Any
Pair = tuple[int, int]


def check_pool2d_input(op: str, x: Array, kernel: Pair, stride: Pair, padding: Pair) -> tuple[int, int]:
    """Raise OpError naming what is wrong with a pooling call; return ``(out_h, out_w)``."""
    if x.ndim != 4:
        raise OpError(f"{op}: expected input of 4 dimensions (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise OpError(f"{op}: expected a floating input, got dtype {x.dtype}")
    (kh, kw), (ph, pw) = kernel, padding
    if ph > kh // 2 or pw > kw // 2:
        raise OpError(f"{op}: expected padding <= kernel // 2, got padding {padding} for kernel {kernel}")
    out_hw = tuple(output_size(x.shape[2 + i], kernel[i], stride[i], padding[i], 1) for i in (0, 1))
    if min(out_hw) <= 0:
        raise OpError(f"{op}: output size must be positive, got {out_hw} for input {x.shape}, "
                      f"kernel {kernel}, stride {stride}, padding {padding}")
    return out_hw  # type: ignore[return-value]


def _views(xpad: Array, kernel: Pair, stride: Pair, out_hw: Pair) -> list[Array]:
    """One strided view ``(N, C, out_h, out_w)`` of a padded array per kernel tap."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    return [xpad[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw] for p in range(kh) for q in range(kw)]


def _taps(x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, pad_value: float) -> list[Array]:
    ph, pw = padding
    if ph or pw:
        x = get_array_module(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    return _views(x, kernel, stride, out_hw)


def _scatter(grads: list[Array], x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pair,
             out_hw: Pair) -> Array:
    """Sum per-tap gradients back into an input-shaped array."""
    n, c, h, w = x_shape
    ph, pw = padding
    xp = get_array_module(grads[0])
    gx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=grads[0].dtype)
    tiled = stride == kernel
    for tap, g in zip(_views(gx, kernel, stride, out_hw), grads):
        if tiled:
            tap[...] = g  # windows do not overlap
        else:
            tap += g
    return gx if ph == pw == 0 else gx[:, :, ph:ph + h, pw:pw + w]


class MaxPoolReference:
    """Max pooling by taps; the state is the tap index of each window's first maximum."""

    def forward(self, x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, save: bool
                ) -> tuple[Array, Any]:
        xp = get_array_module(x)
        taps = _taps(x, kernel, stride, padding, out_hw, -float("inf"))
        y = taps[0].copy()
        index = xp.zeros(y.shape, dtype="int8" if len(taps) < 128 else "int32")
        for t, tap in enumerate(taps[1:], start=1):
            xp.copyto(index, t, where=tap > y)
            xp.maximum(y, tap, out=y)
        return y, ((index, kernel, stride, padding, out_hw) if save else None)

    def backward(self, gy: Array, state: Any, x_shape: tuple[int, ...]) -> Array:
        index, kernel, stride, padding, out_hw = state
        xp, zero = get_array_module(gy), gy.dtype.type(0)
        grads = [xp.where(index == t, gy, zero) for t in range(kernel[0] * kernel[1])]
        return _scatter(grads, x_shape, kernel, stride, padding, out_hw)


_COMPILED_DTYPES = ("float32", "float64")
_BY_REFERENCE = "reference"


class MaxPoolCompiled:
    """Max pooling of NumPy arrays with the numba kernels; the state is the flat argmax. Dtypes the
    kernels are not compiled for (float16) take the reference path, its state tagged as such."""

    def forward(self, x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, save: bool
                ) -> tuple[Array, Any]:
        if x.dtype.name not in _COMPILED_DTYPES:
            y, state = MAX_REFERENCE.forward(x, kernel, stride, padding, out_hw, save)
            return y, ((_BY_REFERENCE, state) if save else None)
        y, flat_index = pool_cpu.forward(x, kernel, stride, padding, out_hw)
        return y, (flat_index if save else None)

    def backward(self, gy: Array, state: Any, x_shape: tuple[int, ...]) -> Array:
        if isinstance(state, tuple) and state[0] is _BY_REFERENCE:
            return MAX_REFERENCE.backward(gy, state[1], x_shape)
        return pool_cpu.backward(gy, state, x_shape)


class AvgPoolReference:
    """Average pooling by taps (zero padding counted)."""

    def forward(self, x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, save: bool
                ) -> tuple[Array, Any]:
        taps = _taps(x, kernel, stride, padding, out_hw, 0.0)
        y = taps[0].copy()
        for tap in taps[1:]:
            y += tap
        y *= x.dtype.type(1.0 / len(taps))
        return y, ((kernel, stride, padding, out_hw) if save else None)

    def backward(self, gy: Array, state: Any, x_shape: tuple[int, ...]) -> Array:
        kernel, stride, padding, out_hw = state
        g = gy * gy.dtype.type(1.0 / (kernel[0] * kernel[1]))
        return _scatter([g] * (kernel[0] * kernel[1]), x_shape, kernel, stride, padding, out_hw)


MAX_REFERENCE = MaxPoolReference()
MAX_COMPILED = MaxPoolCompiled()
AVG_REFERENCE = AvgPoolReference()

