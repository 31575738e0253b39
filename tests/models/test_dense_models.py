"""The source text's claims, shown by training: linear model, perceptron, MLP, XOR."""

from __future__ import annotations

import numpy as np

import gpunet
from gpunet import Tensor
from gpunet import functional as F
from gpunet.data import load_dataset
from gpunet.models import LinearModel
from gpunet.nn import MLP, Perceptron
from gpunet.training import Settings, get_recipe, recipe_trainer


def fit_binary(model, x, t, steps, lr, forward=None):
    opt = gpunet.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        logits = forward(Tensor(x)) if forward else model(Tensor(x))
        loss = F.binary_cross_entropy_with_logits(logits, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    logits = forward(Tensor(x)) if forward else model(Tensor(x))
    return float(((logits.data[:, 0] > 0) == (t[:, 0] > 0.5)).mean())


XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_T = np.array([[0], [1], [1], [0]], dtype=np.float32)


def test_a_single_perceptron_cannot_learn_xor():
    # No line separates XOR: at best 3 of the 4 corners, whatever the training.
    for seed in range(5):
        gpunet.manual_seed(seed)
        p = Perceptron(2, activation="sigmoid")
        assert fit_binary(p, XOR_X, XOR_T, 2000, 0.05, forward=p.pre_activation) <= 0.75


def test_a_two_layer_mlp_learns_xor():
    gpunet.manual_seed(0)
    mlp = MLP([2, 4, 1], activation="tanh")
    assert mlp.num_layers == 2 and mlp.is_deep
    assert fit_binary(mlp, XOR_X, XOR_T, 2000, 0.05) == 1.0


def test_linear_model_is_w0_plus_w_dot_x():
    model = LinearModel(2)
    x = np.array([[2.0, 3.0]], dtype=np.float32)
    w = model.weights.data[0]
    assert model(Tensor(x)).item() == np.float32(w[0] + w[1] * 2 + w[2] * 3)


def train_recipe(name, **overrides):
    recipe = get_recipe(name)
    split = load_dataset(recipe.dataset)
    gpunet.manual_seed(0)
    model = recipe.build(split.info)
    settings = Settings(epochs=overrides.get("epochs", recipe.epochs), batch_size=recipe.batch_size,
                        lr=recipe.lr, optimizer=recipe.optimizer, momentum=recipe.momentum)
    return recipe_trainer(recipe, model, split, settings).fit().last


def test_credit_linear_model_learns():
    assert train_recipe("linear", epochs=10)["test_accuracy"] >= 0.85


def test_credit_perceptron_rule_learns():
    assert train_recipe("perceptron", epochs=3)["test_accuracy"] >= 0.8


def test_credit_mlp_learns():
    assert train_recipe("mlp", epochs=10)["test_accuracy"] >= 0.85
