"""Losses: mean squared error, binary cross-entropy with logits, softmax cross-entropy,
and the perceptron criterion (Rosenblatt's learning rule as a loss)."""

from __future__ import annotations

from typing import Any

from gpunet.autograd import Function, OpError, Tensor
from gpunet.functional.activation import log_softmax_array


def _target(t: Any, like: Tensor) -> Any:
    return t if isinstance(t, Tensor) else like.xp.asarray(t)  # a Tensor target keeps its gradient


def _check_same_shape(op: str, x: Any, t: Any) -> None:
    if x.shape != t.shape:
        raise OpError(f"{op}: expected target of shape {x.shape} (same as the input), got {t.shape}")


class MSELoss(Function):
    def forward(self, x, t):
        _check_same_shape("mse_loss", x, t)
        diff = x - t
        self.save_for_backward(diff)
        return (diff * diff).mean()

    def backward(self, gy):
        diff, = self.saved
        g = gy * (2.0 / max(diff.size, 1)) * diff
        return g, -g if self.needs_input_grad[1] else None


class BCEWithLogits(Function):
    """Mean of ``-[t log s(x) + (1-t) log(1-s(x))]``, computed as ``softplus(x) - t*x``."""

    def forward(self, x, t):
        _check_same_shape("binary_cross_entropy_with_logits", x, t)
        xp = self.xp
        self.save_for_backward(x, t)
        loss = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        return loss.mean()

    def backward(self, gy):
        x, t = self.saved
        need_x, need_t = self.needs_input_grad
        scale = gy / max(x.size, 1)
        gx = scale * (0.5 * (self.xp.tanh(0.5 * x) + 1) - t) if need_x else None
        return gx, -scale * x if need_t else None


class SoftmaxCrossEntropy(Function):
    """Mean over the batch of ``-log softmax(x)[label]``; ``x`` is ``(N, C)`` logits."""

    def forward(self, x, t):
        if x.ndim != 2:
            raise OpError(f"cross_entropy: expected logits of shape (N, C), got {x.shape}")
        if t.shape != (x.shape[0],):
            raise OpError(f"cross_entropy: expected integer labels of shape ({x.shape[0]},), got {t.shape}")
        if t.dtype.kind not in "iu":
            raise OpError(f"cross_entropy: expected integer class labels, got dtype {t.dtype}")
        t = t.astype("int64")
        if t.size and (int(t.min()) < 0 or int(t.max()) >= x.shape[1]):
            raise OpError(f"cross_entropy: labels must lie in [0, {x.shape[1]}), "
                          f"got range [{int(t.min())}, {int(t.max())}]")
        log_p = log_softmax_array(x, axis=1)
        self.save_for_backward(log_p, t)
        rows = self.xp.arange(x.shape[0])
        return -log_p[rows, t].mean()

    def backward(self, gy):
        log_p, t = self.saved
        n = log_p.shape[0]
        g = self.xp.exp(log_p)
        g[self.xp.arange(n), t] -= 1
        return g * (gy / max(n, 1)), None


class PerceptronCriterion(Function):
    """Mean of ``max(0, -s * x)`` with ``s = 2t - 1``; its SGD step is Rosenblatt's rule."""

    def forward(self, x, t):
        _check_same_shape("perceptron_loss", x, t)
        sign = 2 * t - 1
        self.save_for_backward(sign, (sign * x) <= 0)
        return (self.xp.maximum(-sign * x, 0)).mean()

    def backward(self, gy):
        sign, active = self.saved
        return -(gy / max(sign.size, 1)) * sign * active, None


def mse_loss(x: Tensor, target: Any) -> Tensor:
    return MSELoss()(x, _target(target, x))


def binary_cross_entropy_with_logits(x: Tensor, target: Any) -> Tensor:
    return BCEWithLogits()(x, _target(target, x))


def cross_entropy(logits: Tensor, labels: Any) -> Tensor:
    return SoftmaxCrossEntropy()(logits, _target(labels, logits))


def perceptron_loss(x: Tensor, target: Any) -> Tensor:
    return PerceptronCriterion()(x, _target(target, x))
