"""Numerical gradient checking (float64 central differences), public for users' own ops."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree."""


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Any], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-4, seed: int = 0, check: Sequence[bool] | None = None) -> bool:
    """Check ``fn``'s backward against central differences for every float64 input.

    ``fn`` takes Tensors and returns a Tensor or a tuple of Tensors; the scalar checked is
    ``sum(out_k * r_k)`` with fixed random ``r_k`` so every output element is tested.
    ``check[i] = False`` skips input ``i`` (e.g. integer labels). Raises GradcheckError.
    """
    tensors = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
    check = list(check) if check is not None else [t.dtype.kind == "f" for t in tensors]
    for t, c in zip(tensors, check):
        if c and t.dtype != numpy.float64:
            raise GradcheckError(f"gradcheck: expected float64 inputs, got {t.dtype}")
        t.requires_grad = c
        t.grad = None
    rng = numpy.random.default_rng(seed)
    outputs = _as_tuple(fn(*tensors))
    weights = [t.xp.asarray(rng.standard_normal(o.shape)) for o, t in zip(outputs, [tensors[0]] * len(outputs))]

    def scalar() -> float:
        outs = _as_tuple(fn(*tensors))
        return float(sum(float((o.data * w).sum()) for o, w in zip(outs, weights)))

    total = None
    for o, w in zip(outputs, weights):
        term = (o * Tensor(w)).sum()
        total = term if total is None else total + term
    total.backward()
    for index, (t, c) in enumerate(zip(tensors, check)):
        if not c:
            continue
        analytic = backend.to_numpy(t.grad) if t.grad is not None else numpy.zeros(t.shape)
        numeric = numpy.zeros(t.shape)
        for k in numpy.ndindex(*t.shape):  # index the array itself: views need not be contiguous
            original = float(t.data[k])
            t.data[k] = original + eps
            plus = scalar()
            t.data[k] = original - eps
            minus = scalar()
            t.data[k] = original
            numeric[k] = (plus - minus) / (2 * eps)
        if not numpy.allclose(analytic, numeric, atol=atol, rtol=rtol):
            worst = numpy.unravel_index(numpy.argmax(numpy.abs(analytic - numeric)), t.shape) if t.numel() else ()
            raise GradcheckError(f"gradcheck: input {index} (shape {t.shape}): analytic and numerical "
                                 f"gradients differ, worst at {worst}: analytic {analytic[worst]!r} "
                                 f"vs numeric {numeric[worst]!r}")
    return True


def _as_tuple(out: Any) -> tuple[Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)
