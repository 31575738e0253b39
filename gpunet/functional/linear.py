"""The affine map ``y = x @ W.T + b`` as one fused Function (weight ``(out, in)``); the GEMMs run
in the registry's ``linear`` implementation (:mod:`gpunet.ops.linear`, NumPy fast path
:mod:`gpunet.ops.linear_cpu`) on the inputs flattened to 2-D."""

from __future__ import annotations

from gpunet.autograd import Function, OpError, Tensor
from gpunet.ops import registry


class Linear(Function):
    op = "linear"

    def forward(self, x, w, b=None):
        if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
            raise OpError(f"{self.op}: expected input (..., {w.shape[1] if w.ndim == 2 else '?'}) for weight "
                          f"{w.shape}, got input {x.shape}")
        if x.dtype != w.dtype or (b is not None and b.dtype != w.dtype):
            raise OpError(f"{self.op}: expected input{' and bias' if b is not None else ''} of the weight's dtype "
                          f"{w.dtype}, got input {x.dtype}{f' and bias {b.dtype}' if b is not None else ''}; "
                          f"convert with x.astype('{w.dtype}') or the model with model.to(dtype)")
        if b is not None and b.shape != (w.shape[0],):
            raise OpError(f"{self.op}: expected bias of shape ({w.shape[0]},) for weight {w.shape}, got {b.shape}")
        need_x, need_w = self.needs_input_grad[:2]
        impl = registry.lookup(self.op, registry.device_of(x))
        y, state = self._run(impl, x.reshape(-1, x.shape[-1]), w, b)
        self.save_for_backward(x if need_w else None, w if need_x else None, impl, state)  # gx needs w, gw x
        return y.reshape(*x.shape[:-1], w.shape[0])

    def _run(self, impl, x2, w, b):
        return impl.forward(x2, w, b), None

    def _grads(self, impl, state, g2, x2, w, needs):
        return impl.backward(g2, x2, w, needs)

    def backward(self, gy):
        x, w, impl, state = self.saved
        need_x, need_w, *need_b = self.needs_input_grad
        g2 = gy.reshape(-1, gy.shape[-1])
        x2 = x.reshape(-1, x.shape[-1]) if x is not None else None
        gx, gw, gb = self._grads(impl, state, g2, x2, w, (need_x, need_w, bool(need_b and need_b[0])))
        if gx is not None:
            gx = gx.reshape(*gy.shape[:-1], gx.shape[-1])
        if not need_b:  # no bias input
            return gx, gw
        return gx, gw, gb


class LinearReLU(Linear):
    """``relu(x @ W.T + b)`` as one Function: on the CPU the ReLU runs in the GEMM's region and its
    gradient in the backward's (the registry's ``linear_relu``)."""

    op = "linear_relu"

    def _run(self, impl, x2, w, b):
        return impl.forward(x2, w, b)

    def _grads(self, impl, state, g2, x2, w, needs):
        return impl.backward(g2, state, x2, w, needs)


def linear_relu(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``relu(x @ weight.T + bias)`` fused: the values and gradients of ``relu(linear(...))``."""
    if bias is None:
        return LinearReLU()(x, weight)
    return LinearReLU()(x, weight, bias)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``."""
    if bias is None:
        return Linear()(x, weight)
    return Linear()(x, weight, bias)
