"""gpunet.nn.utils.rnn: pad/pack/unpack against PyTorch, gradients, and RNN/LSTM/GRU on packed input."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import nn
from gpunet.autograd import Tensor
from gpunet.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpad_sequence,
)
from gpunet.testing import gradcheck

LENGTHS = [3, 5, 1, 5, 2]


def sequences(dtype=np.float64, features=(2,)):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((n, *features)).astype(dtype) for n in LENGTHS]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_equals_pytorchs(batch_first, side):
    torch = pytest.importorskip("torch")
    seqs = sequences()
    ours = pad_sequence([Tensor(s) for s in seqs], batch_first=batch_first, padding_value=-1.0, padding_side=side)
    ref = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=batch_first,
                                          padding_value=-1.0, padding_side=side)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_pack_and_unpack_equal_pytorchs(batch_first, enforce_sorted):
    torch = pytest.importorskip("torch")
    seqs = sequences()
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    if enforce_sorted:
        seqs = sorted(seqs, key=len, reverse=True)
    padded = pad_sequence([Tensor(s) for s in seqs], batch_first=batch_first)
    tpadded = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=batch_first)
    packed = pack_padded_sequence(padded, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    ref = torch.nn.utils.rnn.pack_padded_sequence(tpadded, torch.tensor(lengths), batch_first=batch_first,
                                                  enforce_sorted=enforce_sorted)
    assert isinstance(packed, PackedSequence)
    np.testing.assert_array_equal(packed.data.numpy(), ref.data.numpy())
    np.testing.assert_array_equal(packed.batch_sizes, ref.batch_sizes.numpy())
    for ours, theirs in ((packed.sorted_indices, ref.sorted_indices), (packed.unsorted_indices, ref.unsorted_indices)):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_array_equal(ours, theirs.numpy())
    np.testing.assert_array_equal(packed.lengths, lengths)
    for total in (None, 7):
        unpacked, got_lengths = pad_packed_sequence(packed, batch_first=batch_first, padding_value=9.0,
                                                    total_length=total)
        tunpacked, tlengths = torch.nn.utils.rnn.pad_packed_sequence(ref, batch_first=batch_first,
                                                                      padding_value=9.0, total_length=total)
        np.testing.assert_array_equal(unpacked.numpy(), tunpacked.numpy())
        np.testing.assert_array_equal(got_lengths, tlengths.numpy())
    cut = unpad_sequence(pad_packed_sequence(packed, batch_first=batch_first)[0], got_lengths, batch_first)
    for a, b in zip(cut, seqs):
        np.testing.assert_array_equal(a.numpy(), b)


def test_pack_sequence_and_device_layout():
    packed = pack_sequence([Tensor(s) for s in sorted(sequences(), key=len, reverse=True)])
    assert packed.batch_sizes.tolist() == [5, 4, 3, 2, 2] and packed.data.shape == (sum(LENGTHS), 2)


def test_gradients_flow_through_pad_pack_and_unpack():
    seqs = sequences(features=(3,))

    def through(*xs):
        padded = pad_sequence(list(xs), padding_value=0.5)
        packed = pack_padded_sequence(padded, LENGTHS, enforce_sorted=False)
        return pad_packed_sequence(packed, batch_first=True, padding_value=2.0)[0]

    assert gradcheck(through, [s.copy() for s in seqs])


def _torch_layer(torch, ours, kind, **options):
    layer = getattr(torch.nn, kind)(3, 4, **options).double()
    with torch.no_grad():
        for name, value in ours.state_dict().items():
            getattr(layer, name).copy_(torch.tensor(np.asarray(value)))
    return layer


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("options", [{}, {"bidirectional": True, "num_layers": 2}, {"batch_first": True}],
                         ids=["plain", "bi-2layer", "batch_first"])
def test_recurrent_layers_take_a_packed_sequence_like_pytorch(kind, options):
    torch = pytest.importorskip("torch")
    gpunet.set_default_dtype("float64")
    gpunet.manual_seed(1)
    ours = getattr(nn, kind)(3, 4, **options)
    theirs = _torch_layer(torch, ours, kind, **options)
    seqs = sequences(features=(3,))
    batch_first = options.get("batch_first", False)
    padded = pad_sequence([Tensor(s) for s in seqs], batch_first=batch_first)
    packed = pack_padded_sequence(padded, LENGTHS, batch_first=batch_first, enforce_sorted=False)
    tpacked = torch.nn.utils.rnn.pack_padded_sequence(
        torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=batch_first),
        torch.tensor(LENGTHS), batch_first=batch_first, enforce_sorted=False)
    out, state = ours(packed)
    tout, tstate = theirs(tpacked)
    assert isinstance(out, PackedSequence)
    np.testing.assert_array_equal(out.batch_sizes, tout.batch_sizes.numpy())
    np.testing.assert_allclose(out.data.numpy(), tout.data.detach().numpy(), rtol=1e-10, atol=1e-12)
    states = state if isinstance(state, tuple) else (state,)
    tstates = tstate if isinstance(tstate, tuple) else (tstate,)
    for s, t in zip(states, tstates):
        np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    # gradients of the weights agree too
    rng = np.random.default_rng(3)
    w = rng.standard_normal(out.data.shape)
    (out.data * Tensor(w)).sum().backward()
    (tout.data * torch.tensor(w)).sum().backward()
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, getattr(theirs, name).grad.numpy(), rtol=1e-8, atol=1e-10)
    padded_out, lengths = pad_packed_sequence(out, batch_first=batch_first)
    assert lengths.tolist() == LENGTHS and padded_out.shape[1 - int(batch_first)] == len(LENGTHS)


def test_lstm_packed_with_initial_state():
    gpunet.set_default_dtype("float64")
    lstm = nn.LSTM(2, 3)
    packed = pack_sequence([Tensor(s) for s in sorted(sequences(), key=len, reverse=True)])
    h0 = Tensor(np.full((1, 5, 3), 0.1))
    out, (h, c) = lstm(packed, (h0, h0))
    padded, lengths = pad_packed_sequence(packed)
    ref, (rh, rc) = lstm(padded, (h0, h0), lengths=lengths)
    np.testing.assert_allclose(h.numpy(), rh.numpy())
    np.testing.assert_allclose(pad_packed_sequence(out)[0].numpy(), ref.numpy())


def test_bad_inputs_name_the_function_and_argument():
    seqs = [Tensor(s) for s in sequences()]
    with pytest.raises(TypeError, match="pad_sequence: sequences must be a non-empty list"):
        pad_sequence([])
    with pytest.raises(ValueError, match=r"pad_sequence: sequences\[1\] has shape \(2, 3\)"):
        pad_sequence([Tensor(np.zeros((2, 2))), Tensor(np.zeros((2, 3)))])
    with pytest.raises(TypeError, match=r"pad_sequence: sequences\[0\] must be a Tensor"):
        pad_sequence([[1.0, 2.0]])
    with pytest.raises(ValueError, match="padding_side must be 'right' or 'left'"):
        pad_sequence(seqs, padding_side="top")
    padded = pad_sequence(seqs)
    with pytest.raises(ValueError, match="pack_padded_sequence: lengths must be in decreasing order"):
        pack_padded_sequence(padded, LENGTHS)
    with pytest.raises(ValueError, match=r"pack_padded_sequence: lengths must lie in \[1, 5\]"):
        pack_padded_sequence(padded, [3, 6, 1, 5, 2], enforce_sorted=False)
    with pytest.raises(ValueError, match=r"pack_padded_sequence: lengths must lie in \[1, 5\]"):
        pack_padded_sequence(padded, [3, 0, 1, 5, 2], enforce_sorted=False)
    with pytest.raises(ValueError, match="pack_padded_sequence: lengths must be 5 integers"):
        pack_padded_sequence(padded, [3.0, 5.0, 1.0, 5.0, 2.0], enforce_sorted=False)
    packed = pack_padded_sequence(padded, LENGTHS, enforce_sorted=False)
    with pytest.raises(ValueError, match="pad_packed_sequence: total_length must be an integer >= the longest"):
        pad_packed_sequence(packed, total_length=3)
    with pytest.raises(TypeError, match="pad_packed_sequence: expected a PackedSequence"):
        pad_packed_sequence(padded)
