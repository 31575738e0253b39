"""RMSprop (Hinton's lecture 6e), PyTorch's form: optional centering and momentum."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpunet.autograd import Tensor
from gpunet.optim.optimizer import Optimizer, check_bool, check_number


class RMSprop(Optimizer):
    """``s = alpha s + (1 - alpha) g^2``; ``avg = sqrt(s - gbar^2)`` (centered) or ``sqrt(s)``, plus
    ``eps``; ``buf = momentum buf + g / avg`` and ``p -= lr buf``, or ``p -= lr g / avg``."""

    buffers = ("step", "square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                                  "momentum": momentum, "centered": centered, "maximize": maximize})

    def check_group(self, group: dict[str, Any], where: str) -> None:
        group["lr"] = check_number(where, "lr", group["lr"], 0.0)
        group["alpha"] = check_number(where, "alpha", group["alpha"], 0.0, 1.0)
        group["eps"] = check_number(where, "eps", group["eps"], 0.0)
        group["weight_decay"] = check_number(where, "weight_decay", group["weight_decay"], 0.0)
        group["momentum"] = check_number(where, "momentum", group["momentum"], 0.0, 1.0)
        group["centered"] = check_bool(where, "centered", group["centered"])
        group["maximize"] = check_bool(where, "maximize", group["maximize"])

    def update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = p.xp
        if "square_avg" not in state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p.data)
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = xp.zeros_like(p.data)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = xp.zeros_like(p.data)
        state["step"] += 1
        alpha = group["alpha"]
        g = -grad if group["maximize"] else grad
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha
            grad_avg += (1 - alpha) * g
            avg = square_avg - grad_avg * grad_avg
            xp.sqrt(avg, out=avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * (g / avg)
