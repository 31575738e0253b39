"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (PyTorch's form)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpunet.autograd import Tensor
from gpunet.ops import fused
from gpunet.optim.optimizer import Optimizer, check_bool, check_number


class SGD(Optimizer):
    """``d = g + weight_decay * p``; ``buf = momentum * buf + (1 - dampening) * d`` (``buf = d`` at
    the first step); ``d = d + momentum * buf`` (Nesterov) or ``buf``; ``p -= lr * d``."""

    buffers = ("momentum_buffer",)

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize})

    def check_group(self, group: dict[str, Any], where: str) -> None:
        group["lr"] = check_number(where, "lr", group["lr"], 0.0)
        group["momentum"] = check_number(where, "momentum", group["momentum"], 0.0, 1.0)
        group["dampening"] = check_number(where, "dampening", group["dampening"], 0.0, 1.0)
        group["weight_decay"] = check_number(where, "weight_decay", group["weight_decay"], 0.0)
        group["nesterov"] = check_bool(where, "nesterov", group["nesterov"])
        group["maximize"] = check_bool(where, "maximize", group["maximize"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{where}: nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        """One fused kernel per parameter on a GPU (``gpunet.ops.fused.sgd_step``)."""
        buf = fused.lookup("sgd_step", p.data)(
            p.data, grad, state.get("momentum_buffer"), group["lr"], group["momentum"], group["dampening"],
            group["weight_decay"], group["nesterov"], group["maximize"])
        if buf is not None:
            state["momentum_buffer"] = buf
