"""The affine map ``y = x @ W.T + b`` on raw 2-D arrays: the spec (any backend) and its interface.

An implementation has ``forward(x, w, b) -> y`` for ``x (M, in)``, ``w (out, in)``, ``b (out,)``
or ``None``, and ``backward(gy, x, w, needs) -> (gx, gw, gb)`` with ``needs`` the three
``(x, w, b)`` flags (``None`` for what is not needed; ``x`` or ``w`` may be ``None`` when only
the other gradient is needed). The NumPy fast path is :mod:`gpunet.ops.linear_cpu`.

``linear_relu`` is ``relu(linear(x))`` as one op: ``forward(x, w, b) -> (y, state)`` and
``backward(gy, state, x, w, needs) -> (gx, gw, gb)``. Its spec is the composition of the linear
and ReLU references (:class:`LinearReluReference`); on CuPy it composes whichever ``linear`` and
``relu`` the registry picks there; NumPy arrays get one numba region each way (``numpy-fast``).
"""

from __future__ import annotations

from typing import Any

from gpunet.ops import fused, registry

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


class LinearReluReference:
    """``relu(linear(x))`` by two implementation objects: the references, or (``on_device``) the
    ``linear`` and ``relu`` the registry picks for the input's device at each call."""

    def __init__(self, on_device: bool = False) -> None:
        self.on_device = on_device

    def forward(self, x: Array, w: Array, b: Array | None) -> tuple[Array, Any]:
        if self.on_device:
            linear, relu = registry.lookup("linear", registry.device_of(x)), fused.lookup("relu", x)
        else:
            linear, relu = REFERENCE, fused.RELU_REFERENCE
        y, mask = relu.forward(linear.forward(x, w, b))
        return y, (linear, relu, mask)

    def backward(self, gy: Array, state: Any, x: Array | None, w: Array | None,
                 needs: Needs) -> tuple[Array | None, Array | None, Array | None]:
        linear, relu, mask = state
        return linear.backward(relu.backward(mask, gy), x, w, needs)


LINEAR_RELU_REFERENCE = LinearReluReference()
LINEAR_RELU_ON_DEVICE = LinearReluReference(on_device=True)
