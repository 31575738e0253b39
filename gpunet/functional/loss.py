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
        self.diff = x - t
        return (self.diff * self.diff).mean()

    def backward(self, gy):
        g = gy * (2.0 / max(self.diff.size, 1)) * self.diff
        return g, -g


class BCEWithLogits(Function):
    """Mean of ``-[t log s(x) + (1-t) log(1-s(x))]``, computed as ``softplus(x) - t*x``."""

    def forward(self, x, t):
        _check_same_shape("binary_cross_entropy_with_logits", x, t)
        xp = self.xp
        self.x, self.t = x, t
        loss = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        return loss.mean()

    def backward(self, gy):
        s = 0.5 * (self.xp.tanh(0.5 * self.x) + 1)
        scale = gy / max(self.x.size, 1)
        return scale * (s - self.t), -scale * self.x


class SoftmaxCrossEntropy(Function):
    """Mean over the batch of ``-log softmax(x)[label]``; ``x`` is ``(N, C)`` logits."""

    def forward(self, x, t):
        if x.ndim != 2:
            raise OpError(f"cross_entropy: expected logits of shape (N, C), got {x.shape}")
        if t.shape != (x.shape[0],):
            raise OpError(f"cross_entropy: expected integer labels of shape ({x.shape[0]},), got {t.shape}")
        if t.dtype.kind not in "iu":
            raise OpError(f"cross_entropy: expected integer class labels, got dtype {t.dtype}")
        self.t = t.astype("int64")
        if self.t.size and (int(self.t.min()) < 0 or int(self.t.max()) >= x.shape[1]):
            raise OpError(f"cross_entropy: labels must lie in [0, {x.shape[1]}), "
                          f"got range [{int(self.t.min())}, {int(self.t.max())}]")
        self.log_p = log_softmax_array(x, axis=1)
        rows = self.xp.arange(x.shape[0])
        return -self.log_p[rows, self.t].mean()

    def backward(self, gy):
        n = self.log_p.shape[0]
        g = self.xp.exp(self.log_p)
        g[self.xp.arange(n), self.t] -= 1
        return g * (gy / max(n, 1)), None


class PerceptronCriterion(Function):
    """Mean of ``max(0, -s * x)`` with ``s = 2t - 1``; its SGD step is Rosenblatt's rule."""

    def forward(self, x, t):
        _check_same_shape("perceptron_loss", x, t)
        self.sign = 2 * t - 1
        self.active = (self.sign * x) <= 0
        return (self.xp.maximum(-self.sign * x, 0)).mean()

    def backward(self, gy):
        g = -(gy / max(self.sign.size, 1)) * self.sign * self.active
        return g, None


def mse_loss(x: Tensor, target: Any) -> Tensor:
    return MSELoss()(x, _target(target, x))


def binary_cross_entropy_with_logits(x: Tensor, target: Any) -> Tensor:
    return BCEWithLogits()(x, _target(target, x))


def cross_entropy(logits: Tensor, labels: Any) -> Tensor:
    return SoftmaxCrossEntropy()(logits, _target(labels, logits))


def perceptron_loss(x: Tensor, target: Any) -> Tensor:
    return PerceptronCriterion()(x, _target(target, x))
