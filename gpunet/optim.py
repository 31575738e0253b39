"""Optimizers (SGD with momentum/weight decay/Nesterov, Adam) and gradient-norm clipping.

Updates run on raw arrays in place, under no graph. ``state_dict`` / ``load_state_dict``
capture everything needed for an exact resume.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from gpunet import backend
from gpunet.nn.module import Parameter


class Optimizer:
    """Base class: holds the parameters, hyperparameters and per-parameter state."""

    def __init__(self, params: Iterable[Parameter], **hyper: Any) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        self.hyper = hyper
        self.state: list[dict[str, Any]] = [{} for _ in self.params]
        self.steps = 0

    @property
    def lr(self) -> float:
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hyper["lr"] = value

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.steps += 1
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self.update(p, p.grad, state)

    def update(self, p: Parameter, grad: Any, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters, step count and per-parameter buffers (arrays stay on their device)."""
        return {"type": type(self).__name__, "hyper": dict(self.hyper), "steps": self.steps,
                "state": [dict(s) for s in self.state]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("type") != type(self).__name__ or len(state["state"]) != len(self.params):
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected state of a "
                             f"{type(self).__name__} over {len(self.params)} parameters, got "
                             f"{state.get('type')} over {len(state.get('state', []))}")
        self.hyper.update(state["hyper"])
        self.steps = int(state["steps"])
        self.state = []
        for p, buffers in zip(self.params, state["state"]):
            self.state.append({k: backend.to_backend(v, p.device).copy() if hasattr(v, "shape") else v
                               for k, v in buffers.items()})


class SGD(Optimizer):
    """``v = momentum * v + g (+ weight_decay * p)``; ``p -= lr * v`` (PyTorch's form)."""

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: expected lr > 0, momentum >= 0, weight_decay >= 0, got "
                             f"lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)

    def update(self, p: Parameter, grad: Any, state: dict[str, Any]) -> None:
        h = self.hyper
        if h["weight_decay"]:
            grad = grad + h["weight_decay"] * p.data
        if h["momentum"]:
            if "velocity" not in state:
                state["velocity"] = grad.copy()
            else:
                state["velocity"] *= h["momentum"]
                state["velocity"] += grad
            grad = grad + h["momentum"] * state["velocity"] if h["nesterov"] else state["velocity"]
        p.data -= h["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; ``weight_decay`` is L2 added to the grad."""

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if lr <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: expected lr > 0 and betas in [0, 1), got lr={lr}, betas={betas}")
        super().__init__(params, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay)

    def update(self, p: Parameter, grad: Any, state: dict[str, Any]) -> None:
        h = self.hyper
        if h["weight_decay"]:
            grad = grad + h["weight_decay"] * p.data
        if "m" not in state:
            state["m"] = p.xp.zeros_like(p.data)
            state["v"] = p.xp.zeros_like(p.data)
        m, v = state["m"], state["v"]
        m *= h["beta1"]
        m += (1 - h["beta1"]) * grad
        v *= h["beta2"]
        v += (1 - h["beta2"]) * grad * grad
        t = self.steps
        step_size = h["lr"] * math.sqrt(1 - h["beta2"] ** t) / (1 - h["beta1"] ** t)
        p.data -= step_size * m / (p.xp.sqrt(v) + h["eps"] * math.sqrt(1 - h["beta2"] ** t))


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale all gradients so their global L2 norm is at most ``max_norm``; return the norm before."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(float(sum((g.astype("float64") ** 2).sum() for g in grads)))  # one host sync
    if total > max_norm > 0:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total
