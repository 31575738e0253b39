"""Training recipes of the recurrent sequence classifiers (``gpunet train rnn|lstm|gru``).

All use Adam, batch 32, gradient-norm clipping at 1.0 and the ``dna`` dataset (motif ``TATAAT``,
order-dependent labels). Each first sits on a plateau at chance, then jumps to ~100 %. Measured
with ``OPENBLAS_NUM_THREADS=1 gpunet train NAME --dataset dna --backend numpy`` (seed 0) on the
2-core CPU, with the machine heavily shared (load average 60-85), so wall times are inflated;
the CPU seconds are what a run costs:

- rnn:  Embedding(8), 2 stacked ReLU RNN layers (64), lr 1e-3; 15 epochs; jump at epoch 6;
  test accuracy 1.000; 12 s wall with one BLAS thread on a quieter machine.
- lstm: Embedding(8), LSTM(32) with forget-gate bias +1, lr 1e-2; 25 epochs; jump at epoch 9;
  test accuracy 1.000; 33 s CPU (360 s wall).
- gru:  Embedding(8), 2 stacked GRU layers (32), lr 1e-2; 12 epochs; jump at epoch 3; test
  accuracy 1.000; 31 s wall with one BLAS thread.

rnn and gru default to two stacked layers (deep RNNs in the source text's sense). The LSTM stays
at one layer: a 2-layer LSTM(32) sat at chance for all 25 epochs on seed 0.

With OpenBLAS's default 2 threads (plain ``gpunet train NAME --dataset dna``, load average
24-47) the results are the same (1.000 each) in 230 s (lstm), 66 s (gru) and 41 s (rnn) wall;
on a busy machine BLAS threads spin waiting for a core (lstm: 134 s CPU instead of 33 s).

Other seeds jumped at epochs 6-7 (rnn), 5 (gru) and up to 17 (lstm), hence the LSTM's margin.
A tanh RNN (hidden 64/128, lr 1e-3 to 1e-2) stayed at chance for 30 epochs: the ReLU RNN is the
one that learns the 60-step dependency.
"""

from __future__ import annotations

from typing import Any

from gpunet.nn.module import Module
from gpunet.recipes import RECIPES, Recipe

# cell -> SequenceClassifier arguments of the default model
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "rnn": {"cell": "rnn", "embedding_dim": 8, "hidden_size": 64, "num_layers": 2, "nonlinearity": "relu"},
    "lstm": {"cell": "lstm", "embedding_dim": 8, "hidden_size": 32, "num_layers": 1, "forget_bias": 1.0},
    "gru": {"cell": "gru", "embedding_dim": 8, "hidden_size": 32, "num_layers": 2},
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
    "rnn": _recipe("rnn", 15, 1e-3, 32, 1.0, "Embedding(8) -> 2-layer ReLU RNN(64) -> Linear on the final state"),
    "lstm": _recipe("lstm", 25, 1e-2, 32, 1.0,
                    "Embedding(8) -> LSTM(32, forget bias +1) -> Linear on the final state"),
    "gru": _recipe("gru", 12, 1e-2, 32, 1.0, "Embedding(8) -> 2-layer GRU(32) -> Linear on the final state"),
})
