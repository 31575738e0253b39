"""Training recipes: for each model name, its default dataset, builder, loss and hyperparameters.

``gpunet train NAME`` looks the name up here. A recipe's ``build(info)`` makes the model from
the dataset's ``info`` (input shape, classes); ``forward(model, *inputs)`` returns the logits
the loss is computed on (the perceptron trains its pre-activation with the perceptron rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gpunet.nn.module import Module


def _call(model: Module, *inputs: Any) -> Any:
    return model(*inputs)


@dataclass
class Recipe:
    name: str
    dataset: str
    build: Callable[[dict[str, Any]], Module]
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 64
    clip: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    forward: Callable[..., Any] = _call
    describe: str = ""
    model_config: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda info: {})

    def config(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"recipe": self.name, **self.model_config(info)}


def _linear(info: dict[str, Any]) -> Module:
    from gpunet.models.dense import LinearModel

    return LinearModel(info["input_shape"][0])


def _perceptron(info: dict[str, Any]) -> Module:
    from gpunet.nn.linear import Perceptron

    return Perceptron(info["input_shape"][0], activation="step")


def _pre_activation(model: Module, x: Any) -> Any:
    return model.pre_activation(x)


def _mlp(info: dict[str, Any]) -> Module:
    from gpunet.nn.containers import MLP

    classes = info["num_classes"]
    out = 1 if info.get("binary") else classes
    return MLP([info["input_shape"][0], 16, 16, out], activation="tanh")


RECIPES: dict[str, Recipe] = {
    "linear": Recipe("linear", "credit", _linear, loss="bce", optimizer="sgd", lr=0.1, epochs=30,
                     batch_size=32, describe="f(x) = w0 + w1 x1 + w2 x2, trained as logistic regression"),
    "perceptron": Recipe("perceptron", "credit", _perceptron, loss="perceptron", optimizer="sgd", lr=0.05,
                         epochs=30, batch_size=1, momentum=0.0, forward=_pre_activation,
                         describe="step(w . [1, x]) trained with Rosenblatt's perceptron rule"),
    "mlp": Recipe("mlp", "credit", _mlp, loss="bce", optimizer="adam", lr=0.01, epochs=40, batch_size=32,
                  describe="2 hidden tanh layers of 16 (3 layers: deep)"),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; raises with the known names otherwise."""
    _load_extra_recipes()
    if name not in RECIPES:
        raise KeyError(f"unknown model {name!r}; expected one of {sorted(RECIPES)}")
    return RECIPES[name]


def _load_extra_recipes() -> None:
    """Recipes of the CNN and RNN models live beside those models (imported lazily)."""
    import importlib

    for module in ("gpunet.models.cnn_recipes", "gpunet.models.rnn_recipes"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
