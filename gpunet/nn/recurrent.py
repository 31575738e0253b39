"""Recurrent layers RNN, LSTM, GRU and the cells RNNCell, LSTMCell, GRUCell, with PyTorch's
parameter names, shapes and gate orders."""

from __future__ import annotations

import math
from typing import Any

from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.functional import recurrent as R
from gpunet.functional.regularization import dropout as _dropout
from gpunet.nn import init, validate
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
                 batch_first: bool = False, bidirectional: bool = False, nonlinearity: str = "tanh", *,
                 dropout: float = 0.0) -> None:
        super().__init__()
        owner = type(self).__name__
        input_size = validate.size(owner, "input_size", input_size)
        hidden_size = validate.size(owner, "hidden_size", hidden_size)
        num_layers = validate.size(owner, "num_layers", num_layers)
        for name, value in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            validate.flag(owner, name, value)
        self.dropout = validate.probability(owner, "dropout", dropout)
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
            if self.dropout and self.training and layer < self.num_stacked - 1:
                x = _dropout(x, self.dropout, True)
        return x, finals

    def _prepare(self, x: Tensor) -> Tensor:
        validate.check_input(type(self).__name__, x, self.weight_ih_l0)
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(f"{type(self).__name__}: expected input {layout} with I={self.input_size}, "
                             f"got {x.shape}")
        if 0 in x.shape[:2]:
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(f"{type(self).__name__}: expected input {layout} with a batch B >= 1 and a "
                             f"sequence length T >= 1, got {x.shape}")
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
                 batch_first: bool = False, bidirectional: bool = False, *, dropout: float = 0.0) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional, dropout=dropout)


class LSTM(RNNBase):
    """LSTM, gates i, f, g, o. ``forward`` returns ``output, (h_n, c_n)``; ``hx = (h0, c0)``."""

    mode = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, bidirectional: bool = False, *, dropout: float = 0.0) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional, dropout=dropout)

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


class RNNCellBase(Module):
    """One timestep: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh`` (G*H,)
    with PyTorch's names, gate orders and U(-1/sqrt(H), 1/sqrt(H)) init. ``forward(input, hx=None)``
    takes ``(B, I)`` or unbatched ``(I,)`` input and runs the recurrent op with T = 1."""

    mode = "rnn"
    layer_count = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh") -> None:
        super().__init__()
        owner = type(self).__name__
        self.input_size = validate.size(owner, "input_size", input_size)
        self.hidden_size = validate.size(owner, "hidden_size", hidden_size)
        self.bias = validate.flag(owner, "bias", bias)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"{owner}: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        gates = R.GATES[self.mode] * self.hidden_size
        bound = 1.0 / math.sqrt(self.hidden_size)
        self.weight_ih = Parameter(init.uniform((gates, self.input_size), bound))
        self.weight_hh = Parameter(init.uniform((gates, self.hidden_size), bound))
        if bias:
            self.bias_ih = Parameter(init.uniform((gates,), bound))
            self.bias_hh = Parameter(init.uniform((gates,), bound))
        else:
            self.bias_ih = self.bias_hh = None

    def _sequence(self, x: Tensor) -> tuple[Tensor, bool]:
        owner = type(self).__name__
        validate.check_input(owner, x, self.weight_ih)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{owner}: expected input (B, {self.input_size}) or ({self.input_size},), got {x.shape}")
        unbatched = x.ndim == 1
        batch = 1 if unbatched else x.shape[0]
        return x.reshape(1, batch, self.input_size), unbatched

    def _state(self, h: Tensor | None, batch: int, unbatched: bool, like: Tensor, what: str = "hx") -> Tensor:
        shape = (batch, self.hidden_size)
        if h is None:
            return Tensor(like.xp.zeros(shape, dtype=like.dtype))
        expected = (self.hidden_size,) if unbatched else shape
        if h.shape != expected:
            raise ValueError(f"{type(self).__name__}: expected {what} of shape {expected}, got {h.shape}")
        validate.check_input(type(self).__name__, h, self.weight_hh, what)
        return h.reshape(*shape)

    def _weights(self) -> tuple[Any, ...]:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    @staticmethod
    def _out(h: Tensor, unbatched: bool) -> Tensor:
        return h.reshape(h.shape[-1]) if unbatched else h

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.mode == "rnn" and self.nonlinearity != "tanh":
            text += f", nonlinearity={self.nonlinearity!r}"
        return text + ("" if self.bias else ", bias=False")


class RNNCell(RNNCellBase):
    """``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``; returns ``h'``."""

    mode = "rnn"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        x, unbatched = self._sequence(input)
        h0 = self._state(hx, x.shape[1], unbatched, x)
        _, h = F.rnn(x, h0, *self._weights(), nonlinearity=self.nonlinearity)
        return self._out(h, unbatched)


class GRUCell(RNNCellBase):
    """GRU step (gates r, z, n); returns ``h'``."""

    mode = "gru"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        x, unbatched = self._sequence(input)
        h0 = self._state(hx, x.shape[1], unbatched, x)
        _, h = F.gru(x, h0, *self._weights())
        return self._out(h, unbatched)


class LSTMCell(RNNCellBase):
    """LSTM step (gates i, f, g, o); ``hx = (h, c)``; returns ``(h', c')``."""

    mode = "lstm"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None  # noqa: A002
                ) -> tuple[Tensor, Tensor]:
        x, unbatched = self._sequence(input)
        h0, c0 = hx if hx is not None else (None, None)
        h0 = self._state(h0, x.shape[1], unbatched, x, "h")
        c0 = self._state(c0, x.shape[1], unbatched, x, "c")
        _, h, c = F.lstm(x, h0, c0, *self._weights())
        return self._out(h, unbatched), self._out(c, unbatched)
