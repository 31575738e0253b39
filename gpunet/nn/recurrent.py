"""Recurrent layers RNN, LSTM and GRU with PyTorch's parameter names, shapes and gate orders."""

from __future__ import annotations

import math
from typing import Any

from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.functional import recurrent as R
from gpunet.nn import init
from gpunet.nn.module import Module, Parameter
from gpunet.nn.utils import rnn as packing


class RNNBase(Module):
    """Stacked, optionally bidirectional recurrence; ``num_layers`` counts as that many layers.

    ``forward(x, h0=None, lengths=None)``: ``x`` is ``(T, B, I)`` (``(B, T, I)`` if
    ``batch_first``); ``lengths`` (B,) marks a padded batch (see ``gpunet.functional.recurrent``).
    Returns ``output`` (T, B, dirs*H) and ``h_n`` (num_layers*dirs, B, H).
    """

    mode = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, bidirectional: bool = False, nonlinearity: str = "tanh") -> None:
        super().__init__()
        if min(input_size, hidden_size, num_layers) <= 0:
            raise ValueError(f"{type(self).__name__}: expected positive sizes, got input_size={input_size}, "
                             f"hidden_size={hidden_size}, num_layers={num_layers}")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
        self.input_size, self.hidden_size, self.num_stacked = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.nonlinearity = nonlinearity
        self.layer_count = num_layers
        gates = R.GATES[self.mode] * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            size = input_size if layer == 0 else hidden_size * self.directions
            for suffix in self._suffixes(layer):
                setattr(self, f"weight_ih{suffix}", Parameter(init.uniform((gates, size), bound)))
                setattr(self, f"weight_hh{suffix}", Parameter(init.uniform((gates, hidden_size), bound)))
                if bias:
                    setattr(self, f"bias_ih{suffix}", Parameter(init.uniform((gates,), bound)))
                    setattr(self, f"bias_hh{suffix}", Parameter(init.uniform((gates,), bound)))

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.directions]

    def _weights(self, suffix: str) -> tuple[Tensor | None, ...]:
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return tuple(getattr(self, f"{n}{suffix}", None) for n in names)

    def _initial(self, state: Tensor | None, batch: int, like: Tensor) -> list[Tensor]:
        """Per layer-and-direction initial states from ``state`` (L*dirs, B, H) or zeros."""
        count, shape = self.num_stacked * self.directions, (batch, self.hidden_size)
        if state is None:
            zero = Tensor(like.xp.zeros(shape, dtype=like.dtype))
            return [zero] * count
        if state.shape != (count, *shape):
            raise ValueError(f"{type(self).__name__}: expected initial state of shape "
                             f"{(count, *shape)}, got {state.shape}")
        return [state[k] for k in range(count)]

    def _run(self, x: Tensor, states: list[list[Tensor]], lengths: Any) -> tuple[Tensor, list[list[Tensor]]]:
        finals: list[list[Tensor]] = [[] for _ in states]
        for layer in range(self.num_stacked):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                k = layer * self.directions + direction
                out = R._run(self.mode, x, [s[k] for s in states], self._weights(suffix), lengths,
                             reverse=direction == 1, nonlinearity=self.nonlinearity)
                outputs.append(out[0])
                for final, value in zip(finals, out[1:]):
                    final.append(value)
            x = outputs[0] if len(outputs) == 1 else F.concat(outputs, axis=2)
        return x, finals

    def _prepare(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(f"{type(self).__name__}: expected input {layout} with I={self.input_size}, "
                             f"got {x.shape}")
        return x.transpose(1, 0, 2) if self.batch_first else x

    def _finish(self, y: Tensor, finals: list[list[Tensor]]) -> tuple[Tensor, list[Tensor]]:
        batch, hidden = finals[0][0].shape
        stacked = [F.concat([s.reshape(1, batch, hidden) for s in final], axis=0) for final in finals]
        return (y.transpose(1, 0, 2) if self.batch_first else y), stacked

    def forward(self, x: Tensor, h0: Tensor | None = None, lengths: Any = None) -> tuple[Tensor, Tensor]:
        if packing.is_packed(x):  # a PackedSequence: the padded batch with lengths=, packed again
            return packing.packed_forward(self, x, h0)
        x = self._prepare(x)
        y, finals = self._run(x, [self._initial(h0, x.shape[1], x)], lengths)
        y, (h_n,) = self._finish(y, finals)
        return y, h_n

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_stacked}"
        if self.mode == "rnn" and self.nonlinearity != "tanh":
            text += f", nonlinearity={self.nonlinearity!r}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text + ("" if self.bias else ", bias=False") + (", batch_first=True" if self.batch_first else "")


class RNN(RNNBase):
    """Elman RNN: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, act tanh or relu."""

    mode = "rnn"


class GRU(RNNBase):
    """GRU, gates r, z, n: ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h = (1-z) n + z h``."""

    mode = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional)


class LSTM(RNNBase):
    """LSTM, gates i, f, g, o. ``forward`` returns ``output, (h_n, c_n)``; ``hx = (h0, c0)``."""

    mode = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional)

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None, lengths: Any = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        if packing.is_packed(x):  # a PackedSequence: the padded batch with lengths=, packed again
            return packing.packed_forward(self, x, hx)
        x = self._prepare(x)
        h0, c0 = hx if hx is not None else (None, None)
        states = [self._initial(h0, x.shape[1], x), self._initial(c0, x.shape[1], x)]
        y, finals = self._run(x, states, lengths)
        y, (h_n, c_n) = self._finish(y, finals)
        return y, (h_n, c_n)
