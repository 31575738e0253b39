"""Training checkpoints are checked against one schema before use: every bad field is a
``TrainingCheckpointError`` (a TrainingError and a CheckpointError) naming the file and the field,
shown by the CLI as one line; a resumed trainer is left untouched by a refused checkpoint."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy
import pytest
from click.testing import CliRunner

import gpunet
from gpunet import io
from gpunet.cli import cli
from gpunet.cli.errors import run_cleanly
from gpunet.data import load_dataset
from gpunet.io import CheckpointError
from gpunet.training import Settings, Trainer, TrainingError, get_recipe, load_trained, recipe_trainer
from gpunet.training.checkpoint import TrainingCheckpointError


def make_trainer(checkpoint: Path | None = None) -> Trainer:
    recipe = get_recipe("mlp")
    split = load_dataset(recipe.dataset, seed=0)
    gpunet.manual_seed(0)
    settings = Settings(epochs=2, batch_size=32, lr=0.01, optimizer="adam", seed=0)
    return recipe_trainer(recipe, recipe.build(split.info), split, settings, checkpoint=checkpoint)


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def good_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Mid-epoch 2 of an Adam run: optimizer buffers, totals and one history record all present."""
    path = tmp_path_factory.mktemp("schema") / "run.npz"
    run = make_trainer(path)
    batches = len(run.train_loader)

    def stop(event: dict[str, Any]) -> None:
        if event.get("step") == batches + 3:
            raise Stop

    run.progress = stop
    with pytest.raises(Stop):
        run.fit()
    run.save()
    return io.load(path)


def first_weight(state: dict[str, Any]) -> str:
    return next(iter(state["model"]))


def set_field(state: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    state = copy.deepcopy(state)
    *parents, last = field.split("/")
    node = state
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return state


BAD_FIELDS = [
    ("model/{w}", [[1.0, 2.0]], r"field 'model\.{w}' must be an array of shape \(16, 2\), got \[\[1\.0, 2\.0\]\]"),
    ("model/{w}", 1.5, r"field 'model\.{w}' must be an array"),
    ("model/{w}", numpy.ones((16, 2), numpy.int64), r"field 'model\.{w}' must be a floating array, got dtype int64"),
    ("model/{w}", numpy.ones((3, 3), numpy.float32), r"field 'model\.{w}' must have shape \(16, 2\), got \(3, 3\)"),
    ("recipe", ["mlp"], r"field 'recipe' must be a recipe name \(a string\), got \['mlp'\]"),
    ("settings", [1], r"field 'settings' must be an object of settings"),
    ("settings/seed", -1, r"field 'settings\.seed' must be an integer >= 0, got -1"),
    ("settings/lr", float("nan"), r"field 'settings\.lr' must be a finite number > 0.0, got nan"),
    ("settings/clip", float("inf"), r"field 'settings\.clip' must be a finite number > 0.0 or null"),
    ("settings/schedule", "zigzag", r"field 'settings\.schedule' must be one of"),
    ("history", 5, r"field 'history' must be a list of epoch records, got 5"),
    ("history/0", {"epoch": "one"}, r"field 'history\[0\]' must be an object of names to numbers"),
    ("totals", {"seen": "x", "loss_sum": 0.0, "correct": 0}, r"field 'totals\.seen' must be an integer in 0\.\.96"),
    ("totals", {"seen": "x"}, r"field 'totals' must hold exactly seen, loss_sum and correct"),
    ("totals/correct", 10**6, r"field 'totals\.correct' must be an integer in 0\.\.\d+ \(at most totals\.seen\)"),
    ("batch", 10**6, r"field 'batch' must be an integer in 0\.\.24 \(this run has 24 batches per epoch\), "
                     r"got 1000000"),
    ("epoch", -5, r"field 'epoch' must be an integer >= 0, got -5"),
    ("epoch", 7, r"field 'epoch' is 7 but the history holds 1 finished epochs"),
    ("step", 5, r"field 'step' is 5 but epoch 1 and batch 3 make 27 steps"),
    ("batch", True, r"field 'batch' must be an integer"),
    ("rng", {"bit_generator": "MT19937"}, r"field 'rng' is not a PCG64 generator state"),
    ("optimizer/state/0/exp_avg", numpy.zeros((2, 16), numpy.float32),
     r"field 'optimizer\.state\.0\.exp_avg' must have shape \(16, 2\), got \(2, 16\)"),
    ("optimizer/state/0/exp_avg_sq", [0.0],
     r"field 'optimizer\.state\.0\.exp_avg_sq' must be an array of shape \(16, 2\) or a finite"),
    ("optimizer/state", [], r"field 'optimizer\.state' must be an object of per-parameter buffers keyed by index"),
    ("optimizer/state/99", {}, r"field 'optimizer\.state\.99' must be a parameter index in 0\.\.\d+"),
    ("optimizer/param_groups/0/lr", float("nan"), r"field 'optimizer\.param_groups\[0\]\.lr' must be a finite "
                                                 r"number, got nan"),
    ("optimizer/param_groups", [], r"field 'optimizer\.param_groups' must hold 1 group\(s\), got 0"),
    ("kind", "weights", r"is not a training checkpoint of gpunet \(field 'kind' is 'weights'"),
]


def test_the_good_state_resumes(good_state: dict[str, Any], tmp_path: Path) -> None:
    assert good_state["epoch"] == 1 and good_state["batch"] == 3 and good_state["step"] == 27
    io.save(good_state, tmp_path / "good.npz")
    run = make_trainer()
    run.restore(tmp_path / "good.npz")
    assert (run.epoch, run.batch, run.step) == (1, 3, 27)


@pytest.mark.parametrize("field, value, message", BAD_FIELDS, ids=[f"{f}={v!r:.20}" for f, v, _ in BAD_FIELDS])
def test_restore_names_the_bad_field(good_state: dict[str, Any], tmp_path: Path, field: str, value: Any,
                                     message: str) -> None:
    weight = first_weight(good_state)
    path = tmp_path / "bad.npz"
    io.save(set_field(good_state, field.format(w=weight), value), path)
    run = make_trainer()
    before = {k: v.copy() for k, v in run.model.state_dict().items()}
    expected = message.format(w=weight.replace(".", r"\."))
    with pytest.raises(TrainingCheckpointError, match=expected if field == "kind" else f"^resume: {path}: {expected}") \
            as info:
        run.restore(path)
    assert isinstance(info.value, TrainingError) and isinstance(info.value, CheckpointError)
    assert info.value.path == path and info.value.field
    assert (run.epoch, run.batch, run.step) == (0, 0, 0)  # nothing was applied
    assert all(numpy.array_equal(before[k], v) for k, v in run.model.state_dict().items())


def cli_line(*args: str) -> tuple[int, str]:
    runner = CliRunner()
    with runner.isolation() as (_, err, _):
        code = run_cleanly(cli, [str(a) for a in args])
    return code, err.getvalue().decode()


@pytest.mark.parametrize("field, value, message", [
    ("model/{w}", [[1.0]], "field 'model.{w}' must be an array of shape (16, 2)"),
    ("recipe", ["mlp"], "field 'recipe' must be a recipe name"),
    ("recipe", "nope", "field 'recipe' names an unknown model 'nope'"),
    ("settings", [1], "field 'settings' must be an object"),
    ("settings/seed", -1, "field 'settings.seed' must be an integer >= 0, got -1"),
    ("dataset", 5, "field 'dataset' must be a dataset name"),
])
def test_evaluate_shows_the_bad_field_as_one_line(good_state: dict[str, Any], tmp_path: Path, field: str,
                                                  value: Any, message: str) -> None:
    weight = first_weight(good_state)
    path = tmp_path / "bad.npz"
    io.save(set_field(good_state, field.format(w=weight), value), path)
    for command in (["evaluate", path, "--backend", "numpy"], ["filters", path]):
        code, err = cli_line(*command)
        assert code == 1 and err.count("\n") == 1, err
        assert err.startswith(f"gpunet: error: {command[0]}: {path}: ") and message.format(w=weight) in err, err
    with pytest.raises(TrainingCheckpointError):
        load_trained(str(path), None, "evaluate")


def test_train_resume_shows_the_bad_field_as_one_line(good_state: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    io.save(set_field(good_state, "batch", 10**6), path)
    env = {**os.environ, "GPUNET_QUIET": "1", "GPUNET_BACKEND": "numpy"}
    env.pop("GPUNET_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "gpunet.cli", "train", "mlp", "--epochs", "2", "--batch-size", "32",
                           "--lr", "0.01", "--optimizer", "adam", "--checkpoint", str(path), "--resume", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"resume: {path}: field 'batch' must be an integer in 0..24" in done.stderr


def test_a_zip_bomb_is_refused_by_evaluate_at_once(tmp_path: Path) -> None:
    """gpunet 0.1 spent 4.7 s and 1.15 GB on a 1 MB file before saying "not a training checkpoint"."""
    import zipfile

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__meta__.npy", b"\x93NUMPY")
        with archive.open("a0.npy", "w", force_zip64=True) as member:
            for _ in range(64):
                member.write(bytes(2**20))
    code, err = cli_line("evaluate", path, "--backend", "numpy")
    assert code == 1 and "compression ratio limit" in err and err.count("\n") == 1


def test_evaluate_accepts_checkpoints_without_newer_settings(good_state: dict[str, Any], tmp_path: Path) -> None:
    """Older gpunet wrote no schedule/weight_decay: evaluating needs only the seed (default 0)."""
    old = copy.deepcopy(good_state)
    for name in ("schedule", "weight_decay", "clip", "seed"):
        del old["settings"][name]
    io.save(old, tmp_path / "old.npz")
    _, _, model, _ = load_trained(str(tmp_path / "old.npz"), None, "evaluate")
    assert all(numpy.array_equal(v, good_state["model"][k]) for k, v in model.state_dict().items())
    with pytest.raises(TrainingCheckpointError, match="field 'settings.seed' is missing"):
        make_trainer().restore(tmp_path / "old.npz")
