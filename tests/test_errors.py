"""Clear errors: each names the op (or the file/step), what was expected and what came."""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import pytest

import gpunet
from gpunet import backend, io, nn
from gpunet import functional as F
from gpunet.autograd import OpError, Tensor
from gpunet.data import load_dataset
from gpunet.training import Recipe, Settings, Trainer, TrainingError, get_recipe, recipe_trainer


def t(*shape: int, dtype: str = "float32") -> Tensor:
    return Tensor(numpy.ones(shape, dtype), requires_grad=True)


def labels(*values: int, dtype: str = "int64") -> numpy.ndarray:
    return numpy.array(values, dtype=dtype)


# (call, op, what was expected, what came): all three must appear in the message
OP_CASES: dict[str, tuple[Callable[[], Any], str, str, str]] = {
    "matmul": (lambda: F.matmul(t(2, 3), t(4, 5)), "matmul", "a.shape[-1] == b.shape[-2]", "(2, 3) @ (4, 5)"),
    "matmul-vec": (lambda: t(3) @ t(4), "matmul", "a.shape[-1] == b.shape[-2]", "(3,) @ (4,)"),
    "linear": (lambda: F.linear(t(2, 3), t(4, 5), t(4)), "linear", "input (..., 5)", "got input (2, 3)"),
    "linear-bias": (lambda: F.linear(t(2, 5), t(4, 5), t(3)), "linear", "bias of shape (4,)", "got (3,)"),
    "Linear-layer": (lambda: nn.Linear(5, 4)(t(2, 3)), "linear", "input (..., 5)", "got input (2, 3)"),
    "mse": (lambda: F.mse_loss(t(4, 1), t(4)), "mse_loss", "target of shape (4, 1)", "got (4,)"),
    "bce": (lambda: F.binary_cross_entropy_with_logits(t(4, 1), numpy.ones(4, "float32")),
            "binary_cross_entropy_with_logits", "target of shape (4, 1)", "got (4,)"),
    "ce-float-labels": (lambda: F.cross_entropy(t(3, 2), labels(0, 1, 1, dtype="float32")), "cross_entropy",
                        "integer class labels", "got dtype float32"),
    "ce-label-shape": (lambda: F.cross_entropy(t(3, 2), labels(0, 1, 1)[:, None]), "cross_entropy",
                       "labels of shape (3,)", "got (3, 1)"),
    "ce-label-range": (lambda: F.cross_entropy(t(3, 2), labels(0, 1, 2)), "cross_entropy", "[0, 2)",
                       "got range [0, 2]"),
    "ce-logits": (lambda: F.cross_entropy(t(3), labels(0, 1, 1)), "cross_entropy", "(N, C)", "got (3,)"),
    "perceptron": (lambda: F.perceptron_loss(t(4, 1), t(3, 1)), "perceptron_loss", "(4, 1)", "got (3, 1)"),
    "reshape": (lambda: t(2, 3).reshape(4, 2), "reshape", "into (4, 2)", "(2, 3) (6 elements)"),
    "transpose": (lambda: t(2, 3).transpose(0, 2), "transpose", "permutation of 2 axes", "got (0, 2)"),
    "add": (lambda: t(2, 3) + t(4), "add", "broadcast", "(2, 3), (4,)"),
    "getitem": (lambda: t(2, 3)[5], "getitem", "out of bounds", "(2, 3)"),
    "max-empty": (lambda: t(0, 3).max(), "max", "non-empty", "(0, 3)"),
    "backward": (lambda: (t(2, 3) * 2).backward(), "backward", "one-element tensor", "(2, 3)"),
    "sum-axis": (lambda: t(2, 3).sum(axis=2), "sum", "out of bounds", "(2, 3)"),
}
if hasattr(F, "conv2d"):
    OP_CASES["conv2d-channels"] = (lambda: F.conv2d(t(1, 3, 8, 8), t(4, 2, 3, 3)), "conv2d",
                                   "expects 2 input channels", "(1, 3, 8, 8) with 3")
    OP_CASES["conv2d-ndim"] = (lambda: F.conv2d(t(3, 8, 8), t(4, 3, 3, 3)), "conv2d", "4 dimensions",
                               "(3, 8, 8)")


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_op_errors_name_the_op_expected_and_got(name: str) -> None:
    call, op, expected, got = OP_CASES[name]
    with pytest.raises(OpError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{op}:"), message
    assert expected in message and got in message, message
    assert isinstance(info.value, ValueError)  # callers catching ValueError still work


# ----- NumPy/CuPy mixing ------------------------------------------------------------------
class FakeCupyArray(numpy.ndarray):
    """An ndarray subclass that the backend takes for a CuPy array (recognised by its module)."""

    __module__ = "cupy._core.core"


def on_fake_gpu(*shape: int) -> Tensor:
    return Tensor(numpy.ones(shape, "float32").view(FakeCupyArray))


def test_get_array_module_refuses_a_mix() -> None:
    gpu, cpu = numpy.ones(2).view(FakeCupyArray), numpy.ones(2)
    assert backend.is_cupy_array(gpu) and not backend.is_cupy_array(cpu)
    assert backend.get_array_module(cpu, 1.0) is numpy
    with pytest.raises(gpunet.DeviceMismatchError, match="NumPy and CuPy arrays met"):
        backend.get_array_module(cpu, gpu)


@pytest.mark.parametrize("call, op", [
    (lambda: F.matmul(t(2, 3), on_fake_gpu(3, 2)), "matmul"),
    (lambda: on_fake_gpu(2) + t(2), "add"),
    (lambda: F.linear(t(2, 3), on_fake_gpu(4, 3)), "linear"),
])
def test_device_mix_in_an_op_names_the_op_and_devices(call: Callable[[], Any], op: str) -> None:
    with pytest.raises(gpunet.DeviceMismatchError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{op}: expected inputs on one device, got ")
    assert "numpy (" in message and "cupy (" in message


# ----- training: NaN/inf and incompatible checkpoints -------------------------------------
def trainer(recipe: Recipe | str, lr: float = 0.01, optimizer: str = "adam", dataset: str | None = None,
            checkpoint: Path | None = None, batch_size: int = 32, **extra: Any) -> Trainer:
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    split = load_dataset(dataset or recipe.dataset, seed=0)
    gpunet.manual_seed(0)
    settings = Settings(epochs=2, batch_size=batch_size, lr=lr, optimizer=optimizer, **extra)
    return recipe_trainer(recipe, recipe.build(split.info), split, settings, checkpoint=checkpoint)


def test_infinite_loss_names_the_loss_and_step() -> None:
    run = trainer("perceptron", lr=1e38, optimizer="sgd", batch_size=1, momentum=0.0)
    with pytest.raises(TrainingError, match=r"^perceptron loss is (inf|nan) at step \d+ \(epoch 1, batch \d+\)"):
        run.fit()
    assert all(numpy.isfinite(p.data).all() for p in run.model.parameters())  # the bad step was not applied


def test_nan_gradient_names_the_parameter_and_step() -> None:
    def sqrt_at_zero(model: Any, x: Any) -> Any:  # finite loss, infinite derivative: NaN gradients
        return F.sqrt(F.abs(model(x)) * 0.0)

    recipe = dataclasses.replace(get_recipe("linear"), name="bad-grad", forward=sqrt_at_zero, loss="mse")
    with pytest.raises(TrainingError, match=r"^gradient of \S+ has NaN/inf at step 1 \(epoch 1, batch 1\)"):
        trainer(recipe).fit()


def saved_run(tmp_path: Path, recipe: str = "mlp", **kwargs: Any) -> Path:
    path = tmp_path / f"{recipe}.npz"
    run = trainer(recipe, checkpoint=path, **kwargs)
    run.save()
    return path


def other_models() -> list[Any]:
    lenet = pytest.param("lenet", marks=pytest.mark.skipif(not _has_recipe("lenet"), reason="no lenet recipe"))
    return ["linear", "perceptron", lenet]


def _has_recipe(name: str) -> bool:
    try:
        get_recipe(name)
    except KeyError:
        return False
    return True


@pytest.mark.parametrize("other", other_models())
def test_resume_from_another_models_checkpoint(tmp_path: Path, other: str) -> None:
    path = saved_run(tmp_path, "mlp")
    with pytest.raises(TrainingError, match=f"is a checkpoint of 'mlp', not of '{other}'"):
        trainer(other, batch_size=1, optimizer="sgd").restore(path)


def test_resume_with_other_settings(tmp_path: Path) -> None:
    path = saved_run(tmp_path, lr=0.01)
    with pytest.raises(TrainingError, match=r"other settings: lr 0.01 \(checkpoint\) vs 0.02 \(now\)"):
        trainer("mlp", lr=0.02).restore(path)


def test_resume_on_another_dataset(tmp_path: Path) -> None:
    path = saved_run(tmp_path)
    with pytest.raises(TrainingError, match="was trained on 'credit', not on 'xor'"):
        trainer("mlp", dataset="xor").restore(path)


def test_resume_from_a_model_of_other_shapes(tmp_path: Path) -> None:
    path = saved_run(tmp_path)
    state = io.load(path)
    name = next(iter(state["model"]))
    state["model"][name] = numpy.zeros((1, 1), "float32")
    io.save(state, path)
    with pytest.raises(TrainingError, match=f"field 'model.{re.escape(name)}' "
                                            r"must have shape \(\d+, \d+\), got \(1, 1\)"):
        trainer("mlp").restore(path)


def test_resume_from_a_checkpoint_that_is_not_a_training_run(tmp_path: Path) -> None:
    io.save({"model": {}}, tmp_path / "weights.npz")
    with pytest.raises(TrainingError, match="not a training checkpoint"):
        trainer("mlp").restore(tmp_path / "weights.npz")


# ----- the command line: one line, no traceback -------------------------------------------
def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GPUNET_QUIET": "1", "GPUNET_BACKEND": "numpy"}
    env.pop("GPUNET_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gpunet.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def assert_one_line_error(done: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("gpunet: error: "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture(scope="module")
def mlp_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ck") / "mlp.npz"
    done = cli("train", "mlp", "--epochs", "1", "--quiet", "--checkpoint", str(path))
    assert done.returncode == 0, done.stderr
    return path


def corrupt(source: Path, target: Path, how: str) -> Path:
    raw = source.read_bytes()
    if how == "truncated":
        target.write_bytes(raw[: len(raw) // 2])
    elif how == "flipped":
        target.write_bytes(raw[:-300] + bytes(b ^ 0xFF for b in raw[-300:-200]) + raw[-200:])
    elif how == "pickle":
        target.write_bytes(pickle.dumps({"model": {}}))
    return target


@pytest.mark.slow
@pytest.mark.parametrize("how, pattern", [
    ("truncated", r"load: .*truncated or corrupted"),
    ("flipped", r"load: .*(truncated or )?corrupted"),
    ("pickle", r"load: .*not a gpunet checkpoint \(expected a zip/.npz archive, got a pickle"),
])
def test_cli_bad_checkpoint_is_one_line(tmp_path: Path, mlp_checkpoint: Path, how: str, pattern: str) -> None:
    bad = corrupt(mlp_checkpoint, tmp_path / "bad.npz", how)
    assert_one_line_error(cli("train", "mlp", "--quiet", "--checkpoint", str(bad), "--resume"), pattern)
    assert_one_line_error(cli("evaluate", str(bad)), pattern)


@pytest.mark.slow
def test_cli_resume_of_another_model_is_one_line(mlp_checkpoint: Path) -> None:
    other = "lenet" if _has_recipe("lenet") else "linear"
    done = cli("train", other, "--quiet", "--checkpoint", str(mlp_checkpoint), "--resume")
    assert_one_line_error(done, f"resume: .* is a checkpoint of 'mlp', not of '{other}'")


@pytest.mark.slow
def test_cli_divergence_is_one_line() -> None:
    done = cli("train", "linear", "--lr", "1e38", "--epochs", "3", "--quiet")
    assert_one_line_error(done, r"bce loss is (nan|inf) at step \d+ \(epoch 1, batch \d+\); lower --lr")


@pytest.mark.slow
def test_cli_unwritable_checkpoint_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    done = cli("train", "linear", "--epochs", "1", "--checkpoint", str(blocker / "ck.npz"))
    # refused before training, as a usage error naming the option (it used to fail at the first save)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpunet: error: train: Invalid value for --checkpoint: ")
    assert "ck.npz" in lines[0] and "epoch 1/" not in done.stdout
