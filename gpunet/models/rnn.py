"""Sequence classifiers: Embedding -> stacked RNN/LSTM/GRU -> Linear on the final hidden state.

Layers are counted as the source text does (the input layer is not a layer; every layer with
weights is): the embedding (1) + each stacked recurrent layer (a bidirectional layer is one
layer) + the output layer (1). Every such classifier therefore has at least 3 layers: deep.
"""

from __future__ import annotations

from typing import Any

import numpy

from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.nn.embedding import Embedding
from gpunet.nn.linear import Linear
from gpunet.nn.module import Module
from gpunet.nn.recurrent import GRU, LSTM, RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class SequenceClassifier(Module):
    """Classify padded token sequences ``(B, T)`` of given ``lengths`` into ``num_classes``.

    The head reads each sequence's final hidden state of the last layer (taken at its own last
    token); with ``bidirectional`` the forward and the reverse final states are concatenated.
    ``forget_bias`` (LSTM only) is added to the forget gates' ``bias_ih`` at initialisation
    (Jozefowicz et al. 2015): gates start nearer "remember", which shortens the plateau on long
    sequences. The layer itself keeps PyTorch's initialisation.
    """

    def __init__(self, vocab_size: int, num_classes: int, cell: str = "lstm", embedding_dim: int = 16,
                 hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False,
                 padding_idx: int | None = 0, nonlinearity: str = "tanh", forget_bias: float = 0.0) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"SequenceClassifier: expected cell one of {sorted(CELLS)}, got {cell!r}")
        self.cell = cell
        self.embedding = Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = CELLS[cell](embedding_dim, hidden_size, num_layers=num_layers,
                               bidirectional=bidirectional, **extra)
        if forget_bias and cell == "lstm":
            for name, param in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    param.data[hidden_size:2 * hidden_size] += forget_bias
        self.head = Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def features(self, tokens: Any, lengths: Any = None) -> Tensor:
        """The final hidden state(s) the head reads, ``(B, dirs*H)``."""
        ids = tokens.data if isinstance(tokens, Tensor) else tokens
        if ids.ndim != 2:
            raise ValueError(f"SequenceClassifier: expected tokens (B, T), got shape {ids.shape}")
        raw_lengths = lengths.data if isinstance(lengths, Tensor) else lengths
        if isinstance(raw_lengths, numpy.ndarray) and raw_lengths.size:
            # host lengths: drop the columns that are padding in every sequence (on the device
            # this would be a sync; the length mask makes those columns no-ops anyway)
            ids = ids[:, : max(int(raw_lengths.max()), 1)]
        x = self.embedding(ids.T)  # (T, B, E): sequence first
        _, state = self.rnn(x, lengths=lengths)
        h_n = state[0] if self.cell == "lstm" else state
        if self.rnn.bidirectional:
            return F.concat([h_n[-2], h_n[-1]], axis=1)
        return h_n[-1]

    def forward(self, tokens: Any, lengths: Any = None) -> Tensor:
        return self.head(self.features(tokens, lengths))
