"""Losses with PyTorch's names, arguments and reductions.

``mse_loss``, ``l1_loss``, ``binary_cross_entropy``, ``binary_cross_entropy_with_logits``
(``weight``, ``pos_weight``), ``nll_loss`` and ``cross_entropy`` (``weight``, ``ignore_index``,
``label_smoothing``, class-index or probability targets, ``(N, C)`` or ``(N, C, d1, ...)``
input), each with ``reduction="mean" | "sum" | "none"``; and the perceptron criterion
(Rosenblatt's learning rule as a loss).

Label checks: on NumPy a class index outside ``[0, C)`` (other than ``ignore_index``) is an
``OpError`` naming the range. On CuPy that check would need a device-to-host copy (a sync) per
call, so it runs on the device instead: the index is clamped for the gather (never an
out-of-bounds read) and the loss of such a row is NaN, which the training loop's non-finite
loss check reports.
"""

from __future__ import annotations

from typing import Any

import numpy

from gpunet.autograd import Function, OpError, Tensor
from gpunet.backend import get_array_module
from gpunet.functional.activation import log_softmax_array
from gpunet.ops import fused

REDUCTIONS = ("mean", "sum", "none")


def _target(t: Any, like: Tensor) -> Any:
    return t if isinstance(t, Tensor) else like.xp.asarray(t)  # a Tensor target keeps its gradient


def _constant(op: str, name: str, value: Any, like: Tensor) -> Any:
    """An optional non-differentiable array argument (``weight``, ``pos_weight``) as ``like``'s dtype."""
    if value is None:
        return None
    raw = value.data if isinstance(value, Tensor) else like.xp.asarray(value)
    if raw.dtype.kind not in "fiu":
        raise OpError(f"{op}: expected a real-valued {name}, got dtype {raw.dtype}")
    return raw.astype(like.dtype, copy=False)


def _check_reduction(op: str, reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise OpError(f"{op}: expected reduction in {REDUCTIONS}, got {reduction!r}")
    return reduction


def _check_floating(op: str, x: Any, what: str = "input") -> None:
    if x.dtype.kind != "f":
        raise OpError(f"{op}: expected a floating {what}, got dtype {x.dtype}; convert it with x.float()")


def _check_same_shape(op: str, x: Any, t: Any) -> None:
    if x.shape != t.shape:
        raise OpError(f"{op}: expected target of shape {x.shape} (same as the input), got {t.shape}")


def _reduce(loss: Any, reduction: str) -> Any:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _scale(gy: Any, reduction: str, count: int) -> Any:
    """The upstream gradient as a multiplier of the elementwise loss's gradient."""
    return gy / max(count, 1) if reduction == "mean" else gy


class _Elementwise(Function):
    """A loss ``reduce(f(x, t))`` with ``x`` and ``t`` of one shape."""

    op = "loss"

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = _check_reduction(self.op, reduction)

    def forward(self, x, t):
        _check_floating(self.op, x)
        _check_same_shape(self.op, x, t)
        loss, saved = self.elementwise(x, t.astype(x.dtype, copy=False))
        self.save_for_backward(*saved)
        return _reduce(loss, self.reduction)

    def backward(self, gy):
        *saved, = self.saved
        gx, gt = self.gradients(_scale(gy, self.reduction, saved[0].size), *saved)
        need_x, need_t = self.needs_input_grad
        return gx if need_x else None, gt if need_t else None


class MSELoss(_Elementwise):
    op = "mse_loss"

    def elementwise(self, x, t):
        diff = x - t
        return diff * diff, (diff,)

    def gradients(self, g, diff):
        gx = (2 * g) * diff
        return gx, -gx


class L1Loss(_Elementwise):
    op = "l1_loss"

    def elementwise(self, x, t):
        diff = x - t
        return self.xp.abs(diff), (diff,)

    def gradients(self, g, diff):
        gx = g * self.xp.sign(diff)
        return gx, -gx


class BCELoss(_Elementwise):
    """``-w [t log x + (1-t) log(1-x)]`` on probabilities ``x``; each log is clamped at -100 as
    PyTorch does, so ``x`` of exactly 0 or 1 gives a finite loss."""

    op = "binary_cross_entropy"

    def __init__(self, reduction: str = "mean", weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight = weight

    def elementwise(self, x, t):
        xp = self.xp
        if xp is numpy and x.size and (x.min() < 0 or x.max() > 1):  # no host sync on the GPU
            raise OpError(f"binary_cross_entropy: expected input probabilities in [0, 1], got values in "
                          f"[{x.min()}, {x.max()}]; use binary_cross_entropy_with_logits for logits")
        with numpy.errstate(divide="ignore"):
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        loss = -(t * log_x + (1 - t) * log_1mx)
        w = self.weight
        if w is not None:
            loss = loss * w
        return loss, (x, t, log_x, log_1mx)

    def gradients(self, g, x, t, log_x, log_1mx):
        xp = self.xp
        w = self.weight
        gx = g * (x - t) / xp.maximum((1 - x) * x, x.dtype.type(1e-12))
        gt = g * (log_1mx - log_x)
        if w is not None:
            gx, gt = gx * w, gt * w
        return gx, gt


class BCEWithLogits(_Elementwise):
    """``w [pw t softplus(-x) + (1-t) softplus(x)]``: ``-[pw t log s(x) + (1-t) log(1-s(x))]``
    computed without overflow; ``pos_weight`` ``pw`` broadcasts over the last (class) axis."""

    op = "binary_cross_entropy_with_logits"

    def __init__(self, reduction: str = "mean", weight: Any = None, pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def elementwise(self, x, t):
        xp = self.xp
        soft_pos = xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))  # softplus(x)
        soft_neg = soft_pos - x  # softplus(-x)
        pw_t = t if self.pos_weight is None else self.pos_weight * t
        loss = pw_t * soft_neg + (1 - t) * soft_pos
        if self.weight is not None:
            loss = loss * self.weight
        return loss, (x, t, pw_t, soft_pos, soft_neg)

    def gradients(self, g, x, t, pw_t, soft_pos, soft_neg):
        s = 0.5 * (self.xp.tanh(0.5 * x) + 1)
        gx = g * (s * (pw_t + 1 - t) - pw_t)
        pw = 1 if self.pos_weight is None else self.pos_weight
        gt = g * (pw * soft_neg - soft_pos)
        if self.weight is not None:
            gx, gt = gx * self.weight, gt * self.weight
        return gx, gt


# ----- class-index losses ------------------------------------------------------------------------
def _classes_last(x: Any) -> Any:
    """``(N, C, d1, ...)`` -> ``(N * d1 * ..., C)``; ``(C,)`` -> ``(1, C)``; ``(N, C)`` unchanged."""
    if x.ndim == 1:
        return x[None, :]
    if x.ndim == 2:
        return x
    return x.reshape(x.shape[0], x.shape[1], -1).transpose(0, 2, 1).reshape(-1, x.shape[1])


def _classes_back(g: Any, shape: tuple[int, ...]) -> Any:
    if len(shape) == 1:
        return g[0]
    if len(shape) == 2:
        return g
    n, c = shape[0], shape[1]
    return g.reshape(n, -1, c).transpose(0, 2, 1).reshape(shape)


def _check_labels(op: str, x: Any, t: Any, ignore_index: int) -> Any:
    """Validate integer labels against input ``x`` (classes on axis 1); returns the flat labels as
    int64. NumPy labels out of range raise; CuPy ones are flagged on the device by the
    implementation (their loss becomes NaN: no host sync)."""
    expected = x.shape[:1] + x.shape[2:] if x.ndim >= 2 else ()
    if t.dtype.kind not in "iu":
        raise OpError(f"{op}: expected integer class labels, got dtype {t.dtype}")
    if t.shape != expected:
        raise OpError(f"{op}: expected labels of shape {expected} for input of shape {x.shape} (input (C,), (N, C) "
                      f"or (N, C, d1, ...)), got {t.shape}")
    classes = x.shape[1] if x.ndim >= 2 else x.shape[0]
    flat = t.reshape(-1)
    if get_array_module(t) is numpy:
        valid = ((flat >= 0) & (flat < classes)) | (flat == ignore_index)
        if not valid.all():
            bad = flat[flat != ignore_index]  # the range of the labels given (not ignored)
            raise OpError(f"{op}: labels must lie in [0, {classes}) (or be ignore_index={ignore_index}), "
                          f"got range [{int(bad.min())}, {int(bad.max())}]")
        return flat.astype(numpy.int64, copy=False)
    if flat.dtype.kind == "u" and flat.dtype.itemsize == 8:
        flat = flat.clip(0, classes)  # before the int64 cast, so 2**63 cannot wrap negative
    return flat.astype("int64", copy=False)


class _ClassLoss(Function):
    """Shared by :class:`NLLLoss` (input: log-probabilities) and :class:`CrossEntropyLoss`
    (input: logits, log-softmax fused). Per row ``i`` with label ``t_i`` and class weights
    ``w`` (ones by default): ``(1 - eps) w[t_i] (-logp[i, t_i]) + eps / C sum_c w_c (-logp[i, c])``,
    zero where ``t_i == ignore_index``; ``mean`` divides by ``sum_i w[t_i]`` over the rows that
    are not ignored, exactly as PyTorch."""

    op = "nll_loss"
    fused_softmax = False

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        self.weight, self.ignore_index = weight, int(ignore_index)
        self.reduction = _check_reduction(self.op, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise OpError(f"{self.op}: expected label_smoothing in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def _logp(self, x):
        return log_softmax_array(_classes_last(x), axis=1) if self.fused_softmax else _classes_last(x)

    def forward(self, x, t):
        _check_floating(self.op, x, "input (logits)" if self.fused_softmax else "input (log-probabilities)")
        if x.ndim == 0:
            raise OpError(f"{self.op}: expected input of shape (C,), (N, C) or (N, C, d1, ...), got {x.shape}")
        classes = x.shape[1] if x.ndim >= 2 else x.shape[0]
        w = self.weight
        if w is not None and w.shape != (classes,):
            raise OpError(f"{self.op}: expected weight of shape ({classes},), got {w.shape}")
        if t.dtype.kind == "f" and self.fused_softmax:
            return self._forward_soft(x, t, classes)
        labels = _check_labels(self.op, x, t, self.ignore_index)
        args = (w, self.ignore_index, self.label_smoothing, self.reduction)
        if self.fused_softmax:  # log-softmax + NLL: one implementation (fused kernels on a GPU)
            impl = fused.lookup("cross_entropy", x)
            loss, state = impl.forward(_classes_last(x), labels, *args)
        else:
            impl = None
            loss, state = fused.nll_rows_forward(_classes_last(x), labels, *args)
        self.save_for_backward(impl, state, None, None, None, x.shape, False)
        if self.reduction != "none":
            return loss
        return loss.reshape(()) if x.ndim == 1 else loss.reshape(x.shape[:1] + x.shape[2:])

    def _forward_soft(self, x, t, classes):
        """Probability targets (same shape as the input): ``-sum_c w_c t'_c logp_c`` per row with
        ``t' = (1 - eps) t + eps / C``; ``mean`` divides by the number of rows."""
        if t.shape != x.shape:
            expected = x.shape[:1] + x.shape[2:] if x.ndim >= 2 else ()
            raise OpError(f"{self.op}: expected integer class labels of shape {expected} or class probabilities "
                          f"of shape {x.shape}, got dtype {t.dtype} of shape {t.shape}")
        logp = self._logp(x)
        probs = _classes_last(t.astype(x.dtype, copy=False))
        if self.label_smoothing:
            probs = (1 - self.label_smoothing) * probs + self.label_smoothing / classes
        wt = probs * self.weight if self.weight is not None else probs
        loss = -(wt * logp).sum(axis=1)
        self.save_for_backward(logp, wt, None, None, None, x.shape, True)
        return self._reduce_rows(loss, None, x.shape)

    def _reduce_rows(self, loss, denom, shape):
        if self.reduction == "sum":
            return loss.sum()
        if self.reduction == "mean":
            return loss.sum() / denom if denom is not None else loss.mean()
        if len(shape) == 1:
            return loss.reshape(())
        return loss.reshape(shape[:1] + shape[2:])

    def backward(self, gy):
        a, b, _, _, _, shape, soft = self.saved
        if not soft:  # a: the implementation (None: NLL), b: its state
            gy = gy.reshape(-1) if self.reduction == "none" else gy
            g = a.backward(gy, b) if a is not None else fused.nll_rows_backward(gy, b)
            return _classes_back(g, shape), None
        logp, wt = a, b
        m = logp.shape[0]
        s = self.xp.broadcast_to(gy / (m if self.reduction == "mean" else 1), (m,))
        g = -wt * s[:, None]
        if self.fused_softmax:
            g = g - self.xp.exp(logp) * g.sum(axis=1, keepdims=True)
        return _classes_back(g, shape), None


class NLLLoss(_ClassLoss):
    op = "nll_loss"


class CrossEntropyLoss(_ClassLoss):
    op = "cross_entropy"
    fused_softmax = True


SoftmaxCrossEntropy = CrossEntropyLoss  # the earlier name


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


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002 - PyTorch's name
    """Squared error ``(input - target)^2``, reduced."""
    return MSELoss(reduction)(input, _target(target, input))


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Absolute error ``|input - target|``, reduced."""
    return L1Loss(reduction)(input, _target(target, input))


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None,  # noqa: A002
                         reduction: str = "mean") -> Tensor:
    """Binary cross-entropy on probabilities ``input`` in [0, 1]."""
    return BCELoss(reduction, _constant("binary_cross_entropy", "weight", weight, input))(
        input, _target(target, input))


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,  # noqa: A002
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """Binary cross-entropy on logits (sigmoid fused, overflow-free); ``pos_weight`` weighs the
    positive term per class (last axis)."""
    op = "binary_cross_entropy_with_logits"
    return BCEWithLogits(reduction, _constant(op, "weight", weight, input),
                         _constant(op, "pos_weight", pos_weight, input))(input, _target(target, input))


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer labels given log-probabilities ``input`` (N, C, ...)."""
    target = target.data if isinstance(target, Tensor) else input.xp.asarray(target)
    return NLLLoss(_constant("nll_loss", "weight", weight, input), ignore_index, reduction, 0.0)(input, target)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C) / (N, C, d1, ...) / (C,) with integer
    labels, or with class probabilities of the input's shape."""
    target = target.data if isinstance(target, Tensor) else input.xp.asarray(target)
    return CrossEntropyLoss(_constant("cross_entropy", "weight", weight, input), ignore_index, reduction,
                            label_smoothing)(input, target)


def perceptron_loss(x: Tensor, target: Any) -> Tensor:
    return PerceptronCriterion()(x, _target(target, x))
