"""The affine map ``y = x @ W.T + b`` on raw 2-D arrays: the spec (any backend) and its interface.

An implementation has ``forward(x, w, b) -> y`` for ``x (M, in)``, ``w (out, in)``, ``b (out,)``
or ``None``, and ``backward(gy, x, w, needs) -> (gx, gw, gb)`` with ``needs`` the three
``(x, w, b)`` flags (``None`` for what is not needed; ``x`` or ``w`` may be ``None`` when only
the other gradient is needed). The NumPy fast path is :mod:`gpunet.ops.linear_cpu`.
"""

from __future__ import annotations

from typing import Any

Array = Any
Needs = tuple[bool, bool, bool]


class LinearReference:
    """Three GEMMs through the array library (``numpy-ref`` and ``cupy``)."""

    def forward(self, x: Array, w: Array, b: Array | None) -> Array:
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, gy: Array, x: Array | None, w: Array | None,
                 needs: Needs) -> tuple[Array | None, Array | None, Array | None]:
        gx = gy @ w if needs[0] else None
        gw = gy.T @ x if needs[1] else None
        gb = gy.sum(axis=0) if needs[2] else None
        return gx, gw, gb


REFERENCE = LinearReference()
