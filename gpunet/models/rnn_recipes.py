"""Training recipes of the recurrent sequence classifiers (``gpunet train rnn|lstm|gru``).

Defaults were measured on the ``dna`` dataset on a 2-core CPU (see the recurrent note in
``bench/``); each run takes a few minutes at most.
"""

from __future__ import annotations

from typing import Any

from gpunet.nn.module import Module
from gpunet.recipes import RECIPES, Recipe

# cell -> SequenceClassifier arguments of the default model
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "rnn": {"cell": "rnn", "embedding_dim": 8, "hidden_size": 64, "num_layers": 1, "nonlinearity": "relu"},
    "lstm": {"cell": "lstm", "embedding_dim": 8, "hidden_size": 32, "num_layers": 1, "forget_bias": 1.0},
    "gru": {"cell": "gru", "embedding_dim": 8, "hidden_size": 32, "num_layers": 1},
}


def _config(cell: str) -> Any:
    def config(info: dict[str, Any]) -> dict[str, Any]:
        return {"vocab_size": info.get("vocab_size", 5), "num_classes": info.get("num_classes", 2),
                "padding_idx": info.get("padding_idx", 0), **ARCHITECTURES[cell]}
    return config


def _builder(cell: str) -> Any:
    def build(info: dict[str, Any]) -> Module:
        from gpunet.models.rnn import SequenceClassifier

        return SequenceClassifier(**_config(cell)(info))
    return build


def _recipe(cell: str, epochs: int, lr: float, batch_size: int, clip: float, describe: str) -> Recipe:
    return Recipe(cell, "dna", _builder(cell), loss="cross_entropy", optimizer="adam", lr=lr, epochs=epochs,
                  batch_size=batch_size, clip=clip, describe=describe, model_config=_config(cell))


RECIPES.update({
    "rnn": _recipe("rnn", 15, 1e-3, 32, 1.0, "Embedding(8) -> ReLU RNN(64) -> Linear on the final state"),
    "lstm": _recipe("lstm", 25, 1e-2, 32, 1.0,
                    "Embedding(8) -> LSTM(32, forget bias +1) -> Linear on the final state"),
    "gru": _recipe("gru", 12, 1e-2, 32, 1.0, "Embedding(8) -> GRU(32) -> Linear on the final state"),
})
