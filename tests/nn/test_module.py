"""Module mechanics, Linear/Perceptron/MLP, layer counting and initialisation."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import Tensor, nn
from gpunet.nn import init


def test_linear_layout_and_names_follow_pytorch(backend_name):
    layer = nn.Linear(3, 4)
    assert layer.weight.shape == (4, 3) and layer.bias.shape == (4,)
    assert layer.weight.device == backend_name and layer.bias.device == backend_name
    assert list(layer.state_dict()) == ["weight", "bias"]
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    out = layer(gpunet.tensor(x))
    assert out.device == backend_name
    np.testing.assert_allclose(out.numpy(), x @ layer.weight.numpy().T + layer.bias.numpy(), rtol=1e-6)


def test_nested_names_and_state_dict_round_trip():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    other = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    other.load_state_dict(model.state_dict())
    for a, b in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
        assert a.data is not b.data


def test_load_state_dict_errors_are_specific():
    model = nn.Linear(2, 3)
    with pytest.raises(KeyError, match="missing"):
        model.load_state_dict({"weight": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"weight expected shape \(3, 2\), got \(2, 3\)"):
        model.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.zeros(3)})


def test_layer_counting_follows_the_source_text():
    assert nn.Perceptron(2).num_layers == 1 and not nn.Perceptron(2).is_deep
    mlp = nn.MLP([2, 3, 1])  # one hidden + one output layer: 2 layers, deep
    assert mlp.num_layers == 2 and mlp.is_deep
    deep = nn.MLP([4] + [8] * 7 + [1])  # the source text's 8 hidden+output layers
    assert deep.num_layers == 8
    assert mlp.num_parameters() == (2 * 3 + 3) + (3 * 1 + 1)


def test_perceptron_with_identity_is_the_linear_model():
    p = nn.Perceptron(2, activation="identity")
    w0, w1, w2 = p.weights.data[0]
    x = np.array([[1.5, -2.0]], dtype=np.float32)
    assert p(Tensor(x)).item() == pytest.approx(w0 + w1 * 1.5 + w2 * -2.0, rel=1e-6)
    assert p.w0 is p.linear.bias


def test_perceptron_step_activation_outputs_zero_or_one():
    p = nn.Perceptron(3, activation="step")
    out = p(Tensor(np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32))).data
    assert set(np.unique(out)) <= {0.0, 1.0}


def test_train_eval_and_zero_grad(backend_name):
    model = nn.MLP([2, 2, 1])
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(gpunet.tensor(np.ones((1, 2), dtype=np.float32))).sum().backward()
    assert all(gpunet.get_array_module(p.grad) is gpunet.get_array_module(p.data) for p in model.parameters())
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_initialisations_are_seeded_and_have_the_documented_scale():
    gpunet.manual_seed(7)
    a = init.xavier_uniform((200, 300))
    gpunet.manual_seed(7)
    b = init.xavier_uniform((200, 300))
    np.testing.assert_array_equal(a, b)
    assert a.var() == pytest.approx(2 / (200 + 300), rel=0.05)
    assert init.kaiming_normal((400, 500)).var() == pytest.approx(2 / 500, rel=0.05)
    assert np.abs(init.lecun_uniform((10, 16))).max() <= 0.25
    assert a.dtype == np.float32
    with pytest.raises(ValueError, match="init: expected one of"):
        init.initialize("orthogonal", (2, 2))


def test_module_requires_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(RuntimeError, match="super"):
        Broken()
