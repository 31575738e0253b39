"""Recurrent layers against a plain per-timestep, per-sequence reference (PyTorch's equations).

The reference is written only with operators, slicing and a small ``ops`` namespace, so the
same code runs on raw NumPy arrays (the forward reference) and on gpunet Tensors through
elementary autograd ops (an independent gradient reference). Each sequence runs alone over its
own length: no masks.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

import numpy
import pytest

import gpunet
from gpunet import functional as F
from gpunet import nn
from gpunet.autograd import Tensor
from gpunet.dtypes import default_dtype_scope
from gpunet.ops.recurrent import GATES

NUMPY_OPS = SimpleNamespace(
    tanh=numpy.tanh, sigmoid=lambda v: 1.0 / (1.0 + numpy.exp(-v)), relu=lambda v: numpy.maximum(v, 0.0),
    concat=numpy.concatenate, zeros=numpy.zeros)
TENSOR_OPS = SimpleNamespace(
    tanh=F.tanh, sigmoid=F.sigmoid, relu=F.relu, concat=F.concat,
    zeros=lambda shape: Tensor(numpy.zeros(shape)))


def cell(mode: str, x: Any, h: Any, c: Any, w: dict[str, Any], ops: Any, nl: str) -> tuple[Any, Any]:
    gi = x @ w["weight_ih"].T + w["bias_ih"]
    gh = h @ w["weight_hh"].T + w["bias_hh"]
    n_h = h.shape[1]
    if mode == "rnn":
        return (ops.tanh if nl == "tanh" else ops.relu)(gi + gh), None
    if mode == "lstm":
        pre = gi + gh
        i, f = ops.sigmoid(pre[:, :n_h]), ops.sigmoid(pre[:, n_h:2 * n_h])
        g, o = ops.tanh(pre[:, 2 * n_h:3 * n_h]), ops.sigmoid(pre[:, 3 * n_h:])
        c = f * c + i * g
        return o * ops.tanh(c), c
    r = ops.sigmoid(gi[:, :n_h] + gh[:, :n_h])
    z = ops.sigmoid(gi[:, n_h:2 * n_h] + gh[:, n_h:2 * n_h])
    n = ops.tanh(gi[:, 2 * n_h:] + r * gh[:, 2 * n_h:])
    return (1 - z) * n + z * h, None


def run_sequence(mode: str, seq: Any, h0: list[Any], c0: list[Any], params: dict[str, Any], layers: int,
                 dirs: int, ops: Any, nl: str) -> tuple[Any, list[Any], list[Any]]:
    """One sequence ``seq`` (L, 1, I); states are lists of (1, H) per layer*dirs."""
    length = seq.shape[0]
    hs, cs = [], []
    for layer in range(layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            w = {name: params[name + suffix] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            h, c = h0[k], c0[k] if c0 else None
            steps = range(length - 1, -1, -1) if d else range(length)
            ys: list[Any] = [None] * length
            for t in steps:
                h, c = cell(mode, seq[t], h, c, w, ops, nl)
                ys[t] = h.reshape(1, 1, -1)
            outs.append(ops.concat(ys, axis=0))
            hs.append(h)
            cs.append(c)
        seq = outs[0] if dirs == 1 else ops.concat(outs, axis=2)
    return seq, hs, cs


def reference(mode: str, x: Any, h0: Any, c0: Any, params: dict[str, Any], lengths: list[int], layers: int,
              dirs: int, ops: Any = NUMPY_OPS, nl: str = "tanh") -> tuple[Any, Any, Any]:
    """``(y, h_n, c_n)`` for a padded batch ``x`` (T, B, I), sequence by sequence."""
    steps = x.shape[0]
    ys, hs, cs = [], [], []
    for b, length in enumerate(lengths):
        hb = [h0[k][b:b + 1] for k in range(layers * dirs)]
        cb = [c0[k][b:b + 1] for k in range(layers * dirs)] if c0 is not None else []
        y, h, c = run_sequence(mode, x[:length, b:b + 1], hb, cb, params, layers, dirs, ops, nl)
        if length < steps:
            y = ops.concat([y, ops.zeros((steps - length, 1, y.shape[2]))], axis=0)
        ys.append(y)
        hs.append(h)
        cs.append(c)
    y = ops.concat(ys, axis=1)
    count = layers * dirs
    h_n = ops.concat([ops.concat([hs[b][k] for b in range(len(lengths))], axis=0).reshape(1, len(lengths), -1)
                      for k in range(count)], axis=0)
    if c0 is None:
        return y, h_n, None
    c_n = ops.concat([ops.concat([cs[b][k] for b in range(len(lengths))], axis=0).reshape(1, len(lengths), -1)
                      for k in range(count)], axis=0)
    return y, h_n, c_n


CASES = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
LAYER = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.fixture(params=["fast", "steps"])
def path(request: pytest.FixtureRequest):
    """Both CPU implementations: the numpy-fast loops and the reference step ops (cells.py)."""
    with gpunet.using(fast_paths=request.param == "fast"):
        yield request.param


def build(mode: str, nl: str, size: int, hidden: int, layers: int, bidirectional: bool, seed: int = 0) -> nn.Module:
    kwargs = {"nonlinearity": nl} if mode == "rnn" else {}
    with default_dtype_scope("float64"):
        model = LAYER[mode](size, hidden, num_layers=layers, bidirectional=bidirectional, **kwargs)
    rng = numpy.random.default_rng(seed)
    for p in model.parameters():  # wider than the default init so every nonlinearity is exercised
        p.data[...] = rng.uniform(-0.8, 0.8, p.shape)
    return model


def run_model(model: nn.Module, mode: str, x: Tensor, h0: Tensor | None, c0: Tensor | None,
              lengths: Any) -> tuple:
    if mode == "lstm":
        y, (h_n, c_n) = model(x, (h0, c0) if h0 is not None else None, lengths=lengths)
        return y, h_n, c_n
    y, h_n = model(x, h0, lengths=lengths)
    return y, h_n, None


@pytest.mark.parametrize("mode,nl", CASES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_reference_forward_and_gradients(mode: str, nl: str, bidirectional: bool, path: str) -> None:
    steps, batch, size, hidden, layers = 6, 4, 3, 5, 2
    dirs = 2 if bidirectional else 1
    lengths = [5, 1, 6, 3]
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((steps, batch, size))
    h0 = rng.standard_normal((layers * dirs, batch, hidden)) * 0.5
    c0 = rng.standard_normal((layers * dirs, batch, hidden)) * 0.5 if mode == "lstm" else None
    model = build(mode, nl, size, hidden, layers, bidirectional)
    params = {name: p.data for name, p in model.named_parameters()}

    want = reference(mode, x, h0, c0, params, lengths, layers, dirs, NUMPY_OPS, nl)
    xt, ht = Tensor(x, requires_grad=True), Tensor(h0, requires_grad=True)
    ct = Tensor(c0, requires_grad=True) if c0 is not None else None
    got = run_model(model, mode, xt, ht, ct, numpy.array(lengths))
    for g, w in zip(got, want):
        if w is not None:
            numpy.testing.assert_allclose(g.numpy(), w, rtol=1e-10, atol=1e-12)
    assert not got[0].numpy()[6:].any() and not got[0].numpy()[1:, 1].any()  # zero past each end

    weights = [rng.standard_normal(g.shape) for g in got if g is not None]
    loss = sum((g * Tensor(w)).sum() for g, w in zip(got, weights) if g is not None)
    loss.backward()

    ref_params = {name: Tensor(value.copy(), requires_grad=True) for name, value in params.items()}
    rx, rh = Tensor(x, requires_grad=True), Tensor(h0, requires_grad=True)
    rc = Tensor(c0, requires_grad=True) if c0 is not None else None
    ref = reference(mode, rx, rh, rc, ref_params, lengths, layers, dirs, TENSOR_OPS, nl)
    ref_loss = sum((g * Tensor(w)).sum() for g, w in zip(ref, weights) if g is not None)
    ref_loss.backward()
    pairs = [(xt, rx, "x"), (ht, rh, "h0")] + ([(ct, rc, "c0")] if ct is not None else [])
    pairs += [(p, ref_params[name], name) for name, p in model.named_parameters()]
    for mine, theirs, name in pairs:
        numpy.testing.assert_allclose(mine.grad, theirs.grad, rtol=1e-9, atol=1e-11, err_msg=name)
    assert not xt.grad[6:].any() and not xt.grad[1:, 1].any()  # padding receives no gradient


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_batch_first_and_default_state(mode: str, path: str) -> None:
    model = build(mode, "tanh", 3, 4, 1, True)
    x = numpy.random.default_rng(2).standard_normal((5, 2, 3))
    y, h_n, _ = run_model(model, mode, Tensor(x), None, None, None)
    zero = Tensor(numpy.zeros((2, 2, 4)))
    y0, h0_n, _ = run_model(model, mode, Tensor(x), zero, zero, None)
    numpy.testing.assert_array_equal(y.numpy(), y0.numpy())
    model.batch_first = True
    yb, hb, _ = run_model(model, mode, Tensor(x.transpose(1, 0, 2)), None, None, None)
    numpy.testing.assert_array_equal(yb.numpy(), y.numpy().transpose(1, 0, 2))
    numpy.testing.assert_array_equal(hb.numpy(), h_n.numpy())


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_without_bias(mode: str, path: str) -> None:
    with default_dtype_scope("float64"):
        model = LAYER[mode](2, 3, bias=False)
    assert [n for n, _ in model.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    x = numpy.random.default_rng(3).standard_normal((4, 2, 2))
    params = {n: p.data for n, p in model.named_parameters()}
    gates = GATES[mode] * 3
    params.update(bias_ih_l0=numpy.zeros(gates), bias_hh_l0=numpy.zeros(gates))
    h0 = numpy.zeros((1, 2, 3))
    want = reference(mode, x, h0, h0 if mode == "lstm" else None, params, [4, 2], 1, 1)
    y = model(Tensor(x), lengths=[4, 2])[0]
    numpy.testing.assert_allclose(y.numpy(), want[0], rtol=1e-10, atol=1e-12)


def test_bad_inputs_raise_clear_errors() -> None:
    model = nn.GRU(3, 4)
    with pytest.raises(ValueError, match="expected input"):
        model(Tensor(numpy.zeros((5, 2, 2), dtype="float32")))
    with pytest.raises(ValueError, match="lengths must lie"):
        model(Tensor(numpy.zeros((5, 2, 3), dtype="float32")), lengths=[6, 1])
    with pytest.raises(ValueError, match="integer lengths"):
        model(Tensor(numpy.zeros((5, 2, 3), dtype="float32")), lengths=[1.5, 1.0])
    with pytest.raises(ValueError, match="initial state"):
        model(Tensor(numpy.zeros((5, 2, 3), dtype="float32")), Tensor(numpy.zeros((2, 2, 4), dtype="float32")))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_saturated_gates_stay_finite_and_agree_across_paths(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Huge float32 pre-activations: exp overflows inside the fast path, without warnings or NaN."""
    layer = LAYER[mode](3, 4)
    x = Tensor((numpy.random.default_rng(4).standard_normal((6, 2, 3)) * 1e4).astype("float32"))
    results = []
    for fast in (True, False):
        with warnings.catch_warnings(), gpunet.using(fast_paths=fast):
            warnings.simplefilter("error")
            y = layer(x, lengths=[6, 3])[0]
        results.append(y.numpy())
    assert numpy.isfinite(results[0]).all()
    numpy.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
