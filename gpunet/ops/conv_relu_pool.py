"""A convolution, its ReLU and the pooling after it as one op (``conv2d_relu_pool2d``), on raw arrays.

The spec is the composition ``pool(relu(conv2d(x, w) + b))`` forward and the composed gradients
backward (:class:`ConvReluPoolReference`): on NumPy (``numpy-ref``) the conv2d and ReLU-pooling
references, on CuPy (``cupy``) whichever ``conv2d`` and ``relu_max_pool2d`` / ``relu_avg_pool2d``
implementations the registry picks for the device (the raw or numba kernels where they run).
NumPy float32/float64 arrays get one numba region each way (``numpy-fast``,
:mod:`gpunet.ops.conv_relu_pool_cpu`). The interface: ``forward(x, w, b, stride, padding,
dilation, pool, save, need_x_grad) -> (y, state)`` with ``pool = (kind, kernel, stride,
padding)``, and ``backward(gy, state, needs) -> (gx, gw, gb)``.
"""

from __future__ import annotations

from typing import Any

import numpy

from gpunet.ops import conv2d, conv_relu_pool_cpu, registry, relu_pool
from gpunet.ops.conv2d import Pair

Array = Any
PoolSpec = conv_relu_pool_cpu.PoolSpec
_RELU_POOL_OPS = {"max": "relu_max_pool2d", "avg": "relu_avg_pool2d"}


class ConvReluPoolReference:
    """The composition by two implementation objects: the references (``on_device=False``), or
    the ones the registry picks for the input's device at each call."""

    def __init__(self, on_device: bool) -> None:
        self.on_device = on_device

    def _pair(self, x: Array, kind: str) -> tuple[Any, Any]:
        if not self.on_device:
            return conv2d.IM2COL, (relu_pool.MAX_REFERENCE if kind == "max" else relu_pool.AVG_REFERENCE)
        device = registry.device_of(x)
        return registry.lookup("conv2d", device), registry.lookup(_RELU_POOL_OPS[kind], device)

    def forward(self, x: Array, w: Array, b: Array | None, stride: Pair, padding: Pair, dilation: Pair,
                pool: PoolSpec, save: bool, need_x_grad: bool) -> tuple[Array, Any]:
        conv_impl, pool_impl = self._pair(x, pool[0])
        z, conv_state = conv_impl.forward(x, w, b, stride, padding, dilation, save, need_x_grad)
        out_hw = conv_relu_pool_cpu.pool_output(z.shape[2:], pool)
        y, pool_state = pool_impl.forward(z, pool[1], pool[2], pool[3], out_hw, save)
        return y, ((conv_impl, conv_state, pool_impl, pool_state, z.shape) if save else None)

    def backward(self, gy: Array, state: Any, needs: tuple[bool, bool, bool]
                 ) -> tuple[Array | None, Array | None, Array | None]:
        conv_impl, conv_state, pool_impl, pool_state, z_shape = state
        return conv_impl.backward(pool_impl.backward(gy, pool_state, z_shape), conv_state, needs)


class ConvReluPoolCompiled:
    """The numba kernels for float32/float64 NumPy arrays of one dtype; other dtypes (float16,
    mixed) run the reference, its state tagged as such."""

    def __init__(self, reference: ConvReluPoolReference) -> None:
        self.reference = reference

    def forward(self, x: Array, w: Array, b: Array | None, stride: Pair, padding: Pair, dilation: Pair,
                pool: PoolSpec, save: bool, need_x_grad: bool) -> tuple[Array, Any]:
        arrays = (x, w) if b is None else (x, w, b)
        if any(a.dtype.char not in "fd" or a.dtype != w.dtype for a in arrays):
            y, state = self.reference.forward(x, w, b, stride, padding, dilation, pool, save, need_x_grad)
            return y, (("reference", state) if save else None)
        x, w = numpy.ascontiguousarray(x), numpy.ascontiguousarray(w)
        b = numpy.ascontiguousarray(b) if b is not None else None
        y, state = conv_relu_pool_cpu.forward(x, w, b, stride, padding, dilation, pool, save)
        return y, (("compiled", state) if save else None)

    def backward(self, gy: Array, state: Any, needs: tuple[bool, bool, bool]
                 ) -> tuple[Array | None, Array | None, Array | None]:
        how, saved = state
        if how == "reference":
            return self.reference.backward(gy, saved, needs)
        return conv_relu_pool_cpu.backward(gy, saved, needs)


REFERENCE = ConvReluPoolReference(on_device=False)
ON_DEVICE = ConvReluPoolReference(on_device=True)
COMPILED = ConvReluPoolCompiled(REFERENCE)
