"""Pooling after a ReLU (``relu_max_pool2d``, ``relu_avg_pool2d``) on raw arrays.

The spec is the composition: ``pool(relu(x))`` forward and ``relu'(pool'(gy))`` backward
(:class:`ReluPoolReference`, ``numpy-ref``). On CuPy (``cupy``) the composition runs whichever
``relu`` and pooling implementations the registry picks for the device (the raw or numba
kernels where they run). NumPy arrays get one numba region each way (``numpy-fast``,
:mod:`gpunet.ops.relu_pool_cpu`). The interface is the pooling one (:mod:`gpunet.ops.pool`):
``forward(x, kernel, stride, padding, out_hw, save) -> (y, state)`` and
``backward(gy, state, x_shape) -> gx``.
"""

from __future__ import annotations

from typing import Any

from gpunet.ops import fused, pool, registry, relu_pool_cpu

Array = Any
Pair = tuple[int, int]


class ReluPoolReference:
    """``pool(relu(x))`` by two implementation objects: fixed ones (the references), or, with
    ``pool_op``, the ones the registry picks for the input's device at each call."""

    def __init__(self, relu: Any = None, pooling: Any = None, pool_op: str | None = None) -> None:
        self.relu, self.pooling, self.pool_op = relu, pooling, pool_op

    def _pair(self, x: Array) -> tuple[Any, Any]:
        if self.pool_op is None:
            return self.relu, self.pooling
        return fused.lookup("relu", x), registry.lookup(self.pool_op, registry.device_of(x))

    def forward(self, x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, save: bool
                ) -> tuple[Array, Any]:
        relu, pooling = self._pair(x)
        r, mask = relu.forward(x)
        y, pooled = pooling.forward(r, kernel, stride, padding, out_hw, save)
        return y, ((relu, mask, pooling, pooled) if save else None)

    def backward(self, gy: Array, state: Any, x_shape: tuple[int, ...]) -> Array:
        relu, mask, pooling, pooled = state
        return relu.backward(mask, pooling.backward(gy, pooled, x_shape))


_COMPILED_DTYPES = ("f", "d")  # float32, float64 by dtype.char (dtype.name is slow)


class ReluPoolCompiled:
    """The numba kernels for float32/float64 NumPy arrays; other dtypes (float16) run the
    reference, its state tagged as such."""

    def __init__(self, kind: str, reference: ReluPoolReference) -> None:
        self.kind, self.reference = kind, reference

    def forward(self, x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, save: bool
                ) -> tuple[Array, Any]:
        if x.dtype.char not in _COMPILED_DTYPES:
            y, state = self.reference.forward(x, kernel, stride, padding, out_hw, save)
            return y, (("reference", state) if save else None)
        if self.kind == "max":
            y, index = relu_pool_cpu.max_forward(x, kernel, stride, padding, out_hw)
            return y, (("max", index) if save else None)
        y, positive = relu_pool_cpu.avg_forward(x, kernel, stride, padding, out_hw)
        return y, (("avg", positive, kernel, stride, padding) if save else None)

    def backward(self, gy: Array, state: Any, x_shape: tuple[int, ...]) -> Array:
        how = state[0]
        if how == "reference":
            return self.reference.backward(gy, state[1], x_shape)
        if how == "max":
            return relu_pool_cpu.max_backward(gy, state[1], x_shape)
        return relu_pool_cpu.avg_backward(gy, *state[1:])


MAX_REFERENCE = ReluPoolReference(fused.RELU_REFERENCE, pool.MAX_REFERENCE)
AVG_REFERENCE = ReluPoolReference(fused.RELU_REFERENCE, pool.AVG_REFERENCE)
MAX_ON_DEVICE = ReluPoolReference(pool_op="max_pool2d")
AVG_ON_DEVICE = ReluPoolReference(pool_op="avg_pool2d")
MAX_COMPILED = ReluPoolCompiled("max", MAX_REFERENCE)
AVG_COMPILED = ReluPoolCompiled("avg", AVG_REFERENCE)
