"""nn.RNN / nn.LSTM / nn.GRU / nn.Embedding: PyTorch layouts, padding semantics, weight exchange."""

from __future__ import annotations

import math

import numpy
import pytest

from gpunet import nn
from gpunet.autograd import Tensor
from gpunet.dtypes import default_dtype_scope
from gpunet.testing import gradcheck

LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def make(mode: str, *args: int, **kwargs: object) -> nn.Module:
    with default_dtype_scope("float64"):
        return LAYERS[mode](*args, **kwargs)


def call(layer: nn.Module, mode: str, x: Tensor, lengths: object = None) -> tuple[Tensor, ...]:
    y, state = layer(x, lengths=lengths)
    return (y, *state) if mode == "lstm" else (y, state)


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_parameter_names_shapes_and_init(mode: str) -> None:
    hidden = 16
    layer = LAYERS[mode](5, hidden, num_layers=2, bidirectional=True)
    gates = GATES[mode] * hidden
    expected = {}
    for k, size in ((0, 5), (1, 2 * hidden)):
        for suffix in (f"_l{k}", f"_l{k}_reverse"):
            expected |= {f"weight_ih{suffix}": (gates, size), f"weight_hh{suffix}": (gates, hidden),
                         f"bias_ih{suffix}": (gates,), f"bias_hh{suffix}": (gates,)}
    got = {name: p.shape for name, p in layer.named_parameters()}
    assert got == expected
    values = numpy.concatenate([p.numpy().ravel() for p in layer.parameters()])
    bound = 1 / math.sqrt(hidden)
    assert values.dtype == numpy.float32 and numpy.abs(values).max() <= bound
    assert numpy.abs(values).max() > 0.9 * bound and abs(values.mean()) < 0.02
    assert layer.num_layers == 2 and layer.is_deep
    assert LAYERS[mode](5, hidden).num_layers == 1 and not LAYERS[mode](5, hidden).is_deep


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_a_sequence_alone_equals_it_inside_a_padded_batch(mode: str) -> None:
    layer = make(mode, 3, 4, num_layers=2, bidirectional=True)
    rng = numpy.random.default_rng(0)
    lengths = numpy.array([7, 3, 5])
    batch = rng.standard_normal((7, 3, 3))
    batch[3:, 1] = 99.0  # padding content must not matter
    batch[5:, 2] = -99.0
    weights = [rng.standard_normal(s) for s in [(7, 3, 8), (4, 3, 4), (4, 3, 4)]]

    def grads(x: numpy.ndarray, lens: numpy.ndarray | None, w: list[numpy.ndarray]) -> tuple:
        layer.zero_grad()
        xt = Tensor(x, requires_grad=True)
        outs = call(layer, mode, xt, lens)
        sum(((o * Tensor(wk)).sum() for o, wk in zip(outs, w)), Tensor(numpy.zeros(()))).backward()
        return [o.numpy() for o in outs], xt.grad, {n: p.grad.copy() for n, p in layer.named_parameters()}

    out_b, gx_b, gp_b = grads(batch, lengths, weights)
    total: dict[str, numpy.ndarray] = {}
    for b, length in enumerate(lengths):
        alone = [weights[0][:length, b:b + 1]] + [w[:, b:b + 1] for w in weights[1:]]
        out_a, gx_a, gp_a = grads(batch[:length, b:b + 1], None, alone)
        numpy.testing.assert_allclose(out_b[0][:length, b:b + 1], out_a[0], rtol=1e-12, atol=1e-14)
        assert not out_b[0][length:, b].any()
        for o_b, o_a in zip(out_b[1:], out_a[1:]):
            numpy.testing.assert_allclose(o_b[:, b:b + 1], o_a, rtol=1e-12, atol=1e-14)
        numpy.testing.assert_allclose(gx_b[:length, b:b + 1], gx_a, rtol=1e-12, atol=1e-14)
        assert not gx_b[length:, b].any()
        for name, g in gp_a.items():  # the batch's parameter gradients: the sum of each sequence's
            total[name] = total.get(name, 0) + g
    for name, g in gp_b.items():
        numpy.testing.assert_allclose(g, total[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_lengths_may_be_a_tensor_and_full_lengths_equal_no_lengths() -> None:
    layer = make("gru", 2, 3)
    x = Tensor(numpy.random.default_rng(1).standard_normal((4, 2, 2)))
    plain = layer(x)[0].numpy()
    numpy.testing.assert_array_equal(layer(x, lengths=Tensor(numpy.array([4, 4])))[0].numpy(), plain)


def test_embedding_lookup_padding_and_gradcheck() -> None:
    emb = nn.Embedding(6, 3, padding_idx=0)
    assert emb.weight.shape == (6, 3) and not emb.weight.numpy()[0].any()
    ids = numpy.array([[1, 0, 5], [5, 2, 0]])
    out = emb(ids)
    numpy.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[ids])
    out.sum().backward()
    counts = numpy.bincount(ids.ravel(), minlength=6).astype(float)
    counts[0] = 0  # the padding row receives no gradient
    numpy.testing.assert_array_equal(emb.weight.grad, numpy.repeat(counts[:, None], 3, axis=1))
    with default_dtype_scope("float64"):
        emb64 = nn.Embedding(6, 3)
    assert gradcheck(lambda w: emb64(ids), [emb64.weight])
    with pytest.raises(ValueError, match="ids must lie"):
        emb(numpy.array([6]))
    with pytest.raises(ValueError, match="integer token ids"):
        emb(numpy.array([1.0]))


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_weights_load_into_torch_and_outputs_match(mode: str) -> None:
    torch = pytest.importorskip("torch")
    ours = make(mode, 3, 5, num_layers=2, bidirectional=True)
    theirs = getattr(torch.nn, mode.upper())(3, 5, num_layers=2, bidirectional=True).double()
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((6, 3, 3))
    lengths = numpy.array([6, 2, 4])
    got = call(ours, mode, Tensor(x), lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths),
                                                     enforce_sorted=False)
    y, state = theirs(packed)
    y = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=6)[0]
    want = (y, *state) if mode == "lstm" else (y, state)
    for g, w in zip(got, want):
        numpy.testing.assert_allclose(g.numpy(), w.detach().numpy(), rtol=1e-10, atol=1e-12)
