"""Dropout as a module: active in ``train()``, the identity in ``eval()``."""

from __future__ import annotations

from gpunet.autograd import Tensor
from gpunet.functional.regularization import dropout
from gpunet.nn import validate
from gpunet.nn.module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training and scale the kept ones by
    ``1 / (1 - p)`` (inverted dropout), so ``eval()`` is the identity. The mask is drawn from
    the seeded :mod:`gpunet.random` generator on the host: the same on the CPU and the GPU."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = validate.probability("Dropout", "p", p)
        self.inplace = validate.flag("Dropout", "inplace", inplace)

    def forward(self, x: Tensor) -> Tensor:
        validate.check_input("Dropout", x)
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


__all__ = ["Dropout"]
