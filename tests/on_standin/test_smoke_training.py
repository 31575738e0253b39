"""LeNet, an LSTM and a GRU classifier train a few steps on the stand-in exactly as on NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
import gpunet.functional as F
from gpunet import config
from gpunet.models import LeNet
from gpunet.models.rnn import SequenceClassifier

STEPS = 3


def lenet_batch(rng):
    return rng.standard_normal((6, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 6)


def sequence_batch(rng):
    lengths = np.array([7, 3, 5, 1, 6], np.int64)
    tokens = rng.integers(1, 5, (5, 7))
    tokens[np.arange(7)[None, :] >= lengths[:, None]] = 0
    return tokens, lengths, rng.integers(0, 3, 5)


def build(name):
    if name == "lenet":
        return LeNet(10, 1, 8)
    return SequenceClassifier(5, 3, cell=name, embedding_dim=4, hidden_size=6)


def train(name, backend, kernels="auto", steps=STEPS, optimizer="sgd"):
    """Losses of ``steps`` plain training steps (same seed and data on every backend)."""
    gpunet.manual_seed(0)
    rng = np.random.default_rng(0)
    with gpunet.use(backend), config.set_kernels(kernels):
        model = build(name).to(backend)
        opt = (gpunet.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd"
               else gpunet.optim.Adam(model.parameters(), lr=0.01))
        batch = lenet_batch(rng) if name == "lenet" else sequence_batch(rng)
        *inputs, target = (gpunet.tensor(a).to(backend) for a in batch)
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(model(*inputs), target)
            loss.backward()
            opt.step()
            losses.append(float(loss.numpy()))
        return losses, {k: gpunet.backend.to_numpy(v) for k, v in model.state_dict().items()}


CASES = [("lenet", "cupy"), ("lenet", "auto"), ("lenet", "raw"), ("lenet", "numba"),
         ("lstm", "cupy"), ("lstm", "raw"), ("lstm", "numba"), ("gru", "cupy"), ("gru", "raw"),
         ("gru", "numba")]


@pytest.mark.parametrize(("name", "kernels"), CASES)
def test_losses_and_weights_equal_numpys(name, kernels):
    want, want_w = train(name, "numpy")
    got, got_w = train(name, "cupy", kernels)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for key in want_w:
        np.testing.assert_allclose(got_w[key], want_w[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("name", ["lenet", "lstm"])
def test_adam_on_cupy_equals_numpy(name):
    want, _ = train(name, "numpy", optimizer="adam")
    got, _ = train(name, "cupy", "cupy", optimizer="adam")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
