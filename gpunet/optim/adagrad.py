"""Adagrad (Duchi et al. 2011), PyTorch's form with ``lr_decay`` and an initial accumulator."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpunet.autograd import Tensor
from gpunet.optim.optimizer import Optimizer, check_bool, check_number


class Adagrad(Optimizer):
    """``sum += g^2``; ``p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)``.

    As in PyTorch, the state (``step = 0``, ``sum = initial_accumulator_value``) exists from the start.
    """

    buffers = ("step", "sum")

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value, "eps": eps,
                                  "maximize": maximize})

    def add_param_group(self, param_group: Any) -> None:
        super().add_param_group(param_group)
        group, start = self.param_groups[-1], len(self.state) - len(self.param_groups[-1]["params"])
        for i, p in enumerate(group["params"]):
            self.state[start + i] = {"step": 0, "sum": p.xp.full_like(p.data, group["initial_accumulator_value"])}

    def check_group(self, group: dict[str, Any], where: str) -> None:
        group["lr"] = check_number(where, "lr", group["lr"], 0.0)
        group["lr_decay"] = check_number(where, "lr_decay", group["lr_decay"], 0.0)
        group["weight_decay"] = check_number(where, "weight_decay", group["weight_decay"], 0.0)
        group["initial_accumulator_value"] = check_number(where, "initial_accumulator_value",
                                                          group["initial_accumulator_value"], 0.0)
        group["eps"] = check_number(where, "eps", group["eps"], 0.0)
        group["maximize"] = check_bool(where, "maximize", group["maximize"])

    def update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = p.xp
        if "sum" not in state:  # a state loaded without buffers
            state["step"] = 0
            state["sum"] = xp.full_like(p.data, group["initial_accumulator_value"])
        state["step"] += 1
        g = -grad if group["maximize"] else grad
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        std = xp.sqrt(state["sum"])
        std += group["eps"]
        p.data -= clr * (g / std)
