"""The source text's dense models: the linear model, the perceptron and the MLP."""

from __future__ import annotations

from collections.abc import Sequence

from gpunet.nn.containers import MLP
from gpunet.nn.linear import Perceptron


class LinearModel(Perceptron):
    """``f(x) = w0 + w1 x1 + ... + wd xd``: a perceptron whose activation is the identity.

    As a classifier, ``f(x) > 0`` means O and ``f(x) < 0`` means X.
    """

    def __init__(self, in_features: int = 2, out_features: int = 1) -> None:
        super().__init__(in_features, activation="identity", out_features=out_features)


def mlp(sizes: Sequence[int], activation: str = "relu") -> MLP:
    """A fully-connected network ``sizes = [d_in, hidden..., d_out]``."""
    return MLP(sizes, activation)


__all__ = ["MLP", "LinearModel", "Perceptron", "mlp"]
