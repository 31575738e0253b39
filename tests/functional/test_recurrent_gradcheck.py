"""Central-difference gradient checks (float64) of the recurrent Functions and layers."""

from __future__ import annotations

import numpy
import pytest

import gpunet
from gpunet import nn
from gpunet.autograd import Tensor
from gpunet.dtypes import default_dtype_scope
from gpunet.functional import recurrent as R
from gpunet.ops.recurrent import GATES
from gpunet.testing import GradcheckError, gradcheck

LENGTHS = numpy.array([4, 1, 3])


@pytest.fixture(params=["fast", "steps"])
def path(request: pytest.FixtureRequest):
    """Both CPU implementations: the numpy-fast loops and the reference step ops."""
    with gpunet.using(fast_paths=request.param == "fast"):
        yield request.param


def inputs(mode: str, steps: int = 4, batch: int = 3, size: int = 2, hidden: int = 3) -> list[Tensor]:
    rng = numpy.random.default_rng(0)
    gates = GATES[mode] * hidden
    states = 2 if mode == "lstm" else 1
    arrays = [rng.standard_normal((steps, batch, size))]
    arrays += [rng.standard_normal((batch, hidden)) * 0.5 for _ in range(states)]
    arrays += [rng.uniform(-0.9, 0.9, (gates, size)), rng.uniform(-0.9, 0.9, (gates, hidden))]
    arrays += [rng.uniform(-0.5, 0.5, gates) for _ in range(2)]
    return [Tensor(a) for a in arrays]


@pytest.mark.parametrize("mode,nl", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
@pytest.mark.parametrize("reverse", [False, True])
def test_function_gradcheck(mode: str, nl: str, reverse: bool, path: str) -> None:
    def fn(*args: Tensor) -> tuple[Tensor, ...]:
        if mode == "rnn":
            return R.rnn(*args, nonlinearity=nl, lengths=LENGTHS, reverse=reverse)
        return getattr(R, mode)(*args, lengths=LENGTHS, reverse=reverse)

    assert gradcheck(fn, inputs(mode))


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_stacked_bidirectional_layer_gradcheck(mode: str) -> None:
    with default_dtype_scope("float64"):
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[mode](2, 2, num_layers=2, bidirectional=True)
    rng = numpy.random.default_rng(1)
    x = Tensor(rng.standard_normal((3, 2, 2)))
    h0 = Tensor(rng.standard_normal((4, 2, 2)) * 0.5)
    c0 = Tensor(rng.standard_normal((4, 2, 2)) * 0.5)
    params = layer.parameters()

    def fn(x: Tensor, h0: Tensor, c0: Tensor, *_: Tensor) -> tuple[Tensor, ...]:
        if mode == "lstm":
            y, (h_n, c_n) = layer(x, (h0, c0), lengths=[3, 2])
            return y, h_n, c_n
        return layer(x, h0, lengths=[3, 2])

    check = [True, True, mode == "lstm"] + [True] * len(params)
    assert gradcheck(fn, [x, h0, c0, *params], check=check)


def test_gradcheck_detects_a_wrong_weight_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    original = R.Recurrent.backward

    def broken(self: R.Recurrent, *grads: object) -> tuple:
        out = list(original(self, *grads))
        out[3] = out[3] * 1.01  # weight_hh of an RNN
        return tuple(out)

    monkeypatch.setattr(R.Recurrent, "backward", broken)
    with pytest.raises(GradcheckError):
        gradcheck(lambda *a: R.rnn(*a, lengths=LENGTHS), inputs("rnn"))
