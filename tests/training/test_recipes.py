"""The recipe table: one dict, all seven models, no registration by import side effect."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gpunet.training import RECIPES, Recipe, get_recipe

NAMES = ["linear", "perceptron", "mlp", "lenet", "rnn", "lstm", "gru"]


def test_the_table_holds_all_seven_recipes_in_order() -> None:
    assert list(RECIPES) == NAMES
    assert all(isinstance(r, Recipe) and r.name == name for name, r in RECIPES.items())


def test_the_table_is_complete_without_importing_any_model() -> None:
    code = ("import sys; from gpunet.training.recipes import RECIPES; "
            f"assert list(RECIPES) == {NAMES!r}, list(RECIPES); "
            "loaded = [m for m in ('gpunet.models.cnn', 'gpunet.models.rnn', 'gpunet.models.dense') "
            "if m in sys.modules]; assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown model 'resnet'; expected one of \['gru', 'lenet', 'linear'"):
        get_recipe("resnet")


@pytest.mark.parametrize(("name", "dataset", "loss", "optimizer", "lr", "epochs", "batch", "clip", "schedule"), [
    ("linear", "credit", "bce", "sgd", 0.1, 30, 32, None, "constant"),
    ("perceptron", "credit", "perceptron", "sgd", 0.05, 30, 1, None, "constant"),
    ("mlp", "credit", "bce", "adam", 0.01, 40, 32, None, "constant"),
    ("lenet", "digits", "cross_entropy", "sgd", 0.04, 40, 32, None, "cosine"),
    ("rnn", "dna", "cross_entropy", "adam", 1e-3, 15, 32, 1.0, "constant"),
    ("lstm", "dna", "cross_entropy", "adam", 1e-2, 25, 32, 1.0, "constant"),
    ("gru", "dna", "cross_entropy", "adam", 1e-2, 12, 32, 1.0, "constant"),
])
def test_recipe_defaults(name: str, dataset: str, loss: str, optimizer: str, lr: float, epochs: int, batch: int,
                         clip: float | None, schedule: str) -> None:
    r = get_recipe(name)
    assert (r.dataset, r.loss, r.optimizer, r.lr, r.epochs, r.batch_size, r.clip, r.schedule) == \
           (dataset, loss, optimizer, lr, epochs, batch, clip, schedule)
    assert r.describe
    assert r.momentum == (0.0 if name == "perceptron" else 0.9)


def test_recurrent_recipe_configs_name_the_cell() -> None:
    info = {"vocab_size": 5, "num_classes": 2, "padding_idx": 0}
    assert get_recipe("lstm").config(info) == {"recipe": "lstm", "vocab_size": 5, "num_classes": 2, "padding_idx": 0,
                                               "cell": "lstm", "embedding_dim": 8, "hidden_size": 32,
                                               "num_layers": 1, "forget_bias": 1.0}
    assert get_recipe("mlp").config(info) == {"recipe": "mlp"}
