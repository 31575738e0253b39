"""SequenceClassifier: layer counting, final-state head, padding invariance, learning, recipes."""

from __future__ import annotations

import numpy
import pytest

import gpunet
from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.models.rnn import SequenceClassifier
from gpunet.optim import Adam
from gpunet.training import get_recipe


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_shapes_layer_count_and_padding_invariance(cell: str, bidirectional: bool) -> None:
    gpunet.manual_seed(0)
    model = SequenceClassifier(5, 3, cell=cell, embedding_dim=4, hidden_size=6, num_layers=2,
                               bidirectional=bidirectional)
    assert model.num_layers == 4 and model.is_deep  # embedding + 2 recurrent + head
    assert model.head.weight.shape == (3, 6 * (2 if bidirectional else 1))
    rng = numpy.random.default_rng(0)
    lengths = numpy.array([5, 2, 4])
    tokens = rng.integers(1, 5, size=(3, 5))
    tokens[numpy.arange(5)[None, :] >= lengths[:, None]] = 0
    logits = model(Tensor(tokens), Tensor(lengths))
    assert logits.shape == (3, 3)
    wider = numpy.concatenate([tokens, numpy.zeros((3, 4), dtype=tokens.dtype)], axis=1)
    numpy.testing.assert_allclose(model(wider, lengths).numpy(), logits.numpy(), rtol=1e-5, atol=1e-6)
    alone = model(tokens[1:2, :2], lengths[1:2])
    numpy.testing.assert_allclose(alone.numpy(), logits.numpy()[1:2], rtol=1e-5, atol=1e-6)


def test_learns_an_order_dependent_rule() -> None:
    """Label = whether token 1 comes before token 2: counts are equal, only order tells."""
    gpunet.manual_seed(0)
    rng = numpy.random.default_rng(0)
    tokens = numpy.stack([rng.permutation([1, 2, 3, 3]) for _ in range(64)])
    labels = (numpy.argmax(tokens == 1, axis=1) < numpy.argmax(tokens == 2, axis=1)).astype(numpy.int64)
    lengths = numpy.full(64, 4)
    model = SequenceClassifier(4, 2, cell="gru", embedding_dim=4, hidden_size=8)
    opt = Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        loss = F.cross_entropy(model(tokens, lengths), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.item()) < 0.05
    assert (model(tokens, lengths).numpy().argmax(axis=1) == labels).all()


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_recipes_are_registered_for_dna(name: str) -> None:
    recipe = get_recipe(name)
    assert recipe.dataset == "dna" and recipe.loss == "cross_entropy"
    info = {"vocab_size": 5, "num_classes": 2, "padding_idx": 0}
    model = recipe.build(info)
    assert isinstance(model, SequenceClassifier) and model.cell == name
    assert recipe.config(info)["cell"] == name


def test_rejects_unknown_cells_and_bad_tokens() -> None:
    with pytest.raises(ValueError, match="expected cell"):
        SequenceClassifier(5, 2, cell="transformer")
    with pytest.raises(ValueError, match="tokens"):
        SequenceClassifier(5, 2)(numpy.zeros(4, dtype=numpy.int64))


def test_forget_bias_shifts_only_the_lstm_forget_gates() -> None:
    gpunet.manual_seed(3)
    plain = SequenceClassifier(5, 2, cell="lstm", hidden_size=4, num_layers=2)
    gpunet.manual_seed(3)
    shifted = SequenceClassifier(5, 2, cell="lstm", hidden_size=4, num_layers=2, forget_bias=1.0)
    for (name, a), (_, b) in zip(plain.named_parameters(), shifted.named_parameters()):
        expected = numpy.zeros(a.shape)
        if "rnn.bias_ih" in name:
            expected[4:8] = 1.0
        numpy.testing.assert_allclose(b.numpy() - a.numpy(), expected, atol=1e-6, err_msg=name)
