"""``adaptive_avg_pool2d``: average pooling to a fixed output size (PyTorch's bins).

Output cell ``i`` of an axis of length ``L`` pooled to ``n`` averages input ``[floor(i L / n),
ceil((i + 1) L / n))``. When ``L`` divides by ``n`` on both axes it is ``avg_pool2d`` with kernel
= stride = ``L / n`` (the registered pooling op); otherwise one small Function over the bins.
"""

from __future__ import annotations

import numbers
from typing import Any

from gpunet.autograd import Function, OpError, Tensor
from gpunet.functional.pool import avg_pool2d


def _bins(length: int, n: int) -> list[tuple[int, int]]:
    return [((i * length) // n, -(-((i + 1) * length) // n)) for i in range(n)]


class AdaptiveAvgPool2d(Function):
    def __init__(self, out_hw: tuple[int, int]) -> None:
        self.out_hw = out_hw

    def forward(self, x):
        h, w = x.shape[-2:]
        oh, ow = self.out_hw
        rows, cols = _bins(h, oh), _bins(w, ow)
        y = self.xp.empty(x.shape[:-2] + (oh, ow), dtype=x.dtype)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                y[..., i, j] = x[..., r0:r1, c0:c1].mean(axis=(-2, -1))
        self.save_for_backward(x.shape, rows, cols)
        return y

    def backward(self, gy):
        shape, rows, cols = self.saved
        gx = self.xp.zeros(shape, dtype=gy.dtype)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                gx[..., r0:r1, c0:c1] += (gy[..., i, j] / ((r1 - r0) * (c1 - c0)))[..., None, None]
        return gx


def output_hw(owner: str, output_size: Any) -> tuple[int | None, int | None]:
    items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    ok = len(items) == 2 and all(v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1)
                                 for v in items)
    if not ok:
        raise OpError(f"{owner}: expected output_size as an int >= 1 or a pair of ints >= 1 (or None), "
                      f"got {output_size!r}")
    return tuple(None if v is None else int(v) for v in items)  # type: ignore[return-value]


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:  # noqa: A002
    """Average-pool ``input`` (N, C, H, W) or (C, H, W) to ``output_size`` (``None`` keeps an axis)."""
    oh, ow = output_hw("adaptive_avg_pool2d", output_size)
    if input.ndim not in (3, 4):
        raise OpError(f"adaptive_avg_pool2d: expected input (N, C, H, W) or (C, H, W), got {input.shape}")
    if input.dtype.kind != "f":
        raise OpError(f"adaptive_avg_pool2d: expected a floating input, got dtype {input.dtype}")
    h, w = input.shape[-2:]
    oh, ow = oh or h, ow or w
    if h == 0 or w == 0:
        raise OpError(f"adaptive_avg_pool2d: expected a non-empty spatial size, got {input.shape}")
    if h % oh == 0 and w % ow == 0 and input.ndim == 4:
        kernel = (h // oh, w // ow)
        return avg_pool2d(input, kernel, kernel) if kernel != (1, 1) else input
    return AdaptiveAvgPool2d((oh, ow))(input)
