"""The affine map ``y = x @ W.T + b`` as one fused Function (weight ``(out, in)``)."""

from __future__ import annotations

from gpunet import parallel
from gpunet.autograd import Function, OpError, Tensor


class Linear(Function):
    def forward(self, x, w, b=None):
        if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
            raise OpError(f"linear: expected input (..., {w.shape[1] if w.ndim == 2 else '?'}) for weight "
                          f"{w.shape}, got input {x.shape}")
        if x.dtype != w.dtype or (b is not None and b.dtype != w.dtype):
            raise OpError(f"linear: expected input{' and bias' if b is not None else ''} of the weight's dtype "
                          f"{w.dtype}, got input {x.dtype}{f' and bias {b.dtype}' if b is not None else ''}; "
                          f"convert with x.astype('{w.dtype}') or the model with model.to(dtype)")
        if b is not None and b.shape != (w.shape[0],):
            raise OpError(f"linear: expected bias of shape ({w.shape[0]},) for weight {w.shape}, got {b.shape}")
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, w if need_x else None)  # gx needs w, gw needs x
        parallel.blas_for(x.size * w.shape[0])  # BLAS's threads back for a large GEMM after a conv split
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        x, w = self.saved
        need_x, need_w, *need_b = self.needs_input_grad
        g2 = gy.reshape(-1, gy.shape[-1])
        parallel.blas_for(g2.size * (w if w is not None else x).shape[-1])  # in_features
        gx = gy @ w if need_x else None
        gw = g2.T @ x.reshape(-1, x.shape[-1]) if need_w else None
        if not need_b:  # no bias input
            return gx, gw
        return gx, gw, g2.sum(axis=0) if need_b[0] else None


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``."""
    if bias is None:
        return Linear()(x, weight)
    return Linear()(x, weight, bias)
