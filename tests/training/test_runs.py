"""Run builders of :mod:`gpunet.training.runs`: usage errors name the option, no click involved."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import gpunet
from gpunet import io
from gpunet import random as gpunet_random
from gpunet.training import (
    Settings,
    TrainingError,
    UsageError,
    get_recipe,
    load_trained,
    make_settings,
    prepare_run,
    recipe_trainer,
)

REPO = Path(__file__).resolve().parents[2]


def test_prepare_run_fit_check_leaves_the_rng_alone() -> None:
    """The fit check runs a forward pass; the RNG must end where seeding + building leaves it."""
    recipe, split, _ = prepare_run("mlp", None, 3, None)
    after = gpunet_random.get_state()
    gpunet.manual_seed(3)
    recipe.build(split.info)
    assert gpunet_random.get_state() == after


def test_usage_error_is_a_value_error_with_the_option() -> None:
    exc = UsageError("bad", param_hint="--dataset")
    assert isinstance(exc, ValueError) and str(exc) == "bad" and exc.param_hint == "--dataset"
    assert UsageError("plain").param_hint is None


@pytest.mark.parametrize(("model", "dataset"), [("mlp", "dna"), ("lenet", "credit"), ("rnn", "xor")])
def test_model_that_does_not_fit_the_dataset(model: str, dataset: str) -> None:
    with pytest.raises(UsageError, match=rf"model {model!r} takes the dataset\(s\) .*; got {dataset!r}") as info:
        prepare_run(model, dataset, 0, None)
    assert info.value.param_hint == "--dataset"


def test_perceptron_on_multiclass_data() -> None:
    pytest.importorskip("sklearn")
    expected = r"model 'perceptron' takes the dataset\(s\) credit, xor; got 'digits'"
    with pytest.raises(UsageError, match=expected) as info:
        prepare_run("perceptron", "digits", 0, None)
    assert info.value.param_hint == "--dataset"


def test_data_dir_for_a_generated_dataset(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="dataset 'credit' reads no files") as info:
        prepare_run("mlp", None, 0, str(tmp_path))
    assert info.value.param_hint == "--data-dir"


def test_unknown_model_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown model 'resnet'") as info:
        prepare_run("resnet", None, 0, None)
    assert info.value.param_hint == "MODEL"


def test_make_settings_takes_the_recipes_defaults_and_overrides() -> None:
    recipe = get_recipe("lenet")
    assert make_settings(recipe, seed=4) == Settings(
        epochs=40, batch_size=32, lr=0.04, optimizer="sgd", seed=4, momentum=0.9, weight_decay=0.0, clip=None,
        schedule="cosine")
    given = make_settings(recipe, epochs=2, batch_size=8, lr=0.5, optimizer="adam", weight_decay=0.0,
                          schedule="constant", clip=2.0)
    assert (given.epochs, given.batch_size, given.lr, given.optimizer, given.clip, given.schedule) == \
           (2, 8, 0.5, "adam", 2.0, "constant")
    assert make_settings(get_recipe("rnn")).clip == 1.0


def test_load_trained_restores_the_weights(tmp_path: Path) -> None:
    recipe, split, model = prepare_run("mlp", None, 2, None)
    path = tmp_path / "mlp.npz"
    trainer = recipe_trainer(recipe, model, split, make_settings(recipe, seed=2, epochs=1), checkpoint=path)
    trainer.fit()
    again, _, loaded, state = load_trained(str(path), None, "evaluate")
    assert again.name == "mlp" and state["epoch"] == 1
    for name, value in model.state_dict().items():
        assert (loaded.state_dict()[name] == value).all(), name


def test_load_trained_refuses_other_checkpoints(tmp_path: Path) -> None:
    other = io.save({"kind": "weights", "w": [1.0]}, tmp_path / "other.npz")
    with pytest.raises(TrainingError, match=r"^filters: .*other\.npz is not a training checkpoint of gpunet"):
        load_trained(str(other), None, "filters")


def test_the_training_package_imports_neither_click_nor_the_cli() -> None:
    code = ("import sys, gpunet.training, gpunet.training.runs; "
            "bad = [m for m in sys.modules if m == 'click' or m.startswith(('click.', 'gpunet.cli'))]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sources = "\n".join(p.read_text() for p in (REPO / "gpunet" / "training").glob("*.py"))
    assert "gpunet.cli" not in sources and "import click" not in sources
