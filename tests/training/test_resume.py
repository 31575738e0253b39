"""Exact resume: an interrupted and resumed run ends bit-identical to an uninterrupted one (CPU)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy
import pytest

import gpunet
from gpunet import io
from gpunet.backend import to_numpy
from gpunet.data import ArrayDataset, Split, load_dataset
from gpunet.training import RECIPES, Recipe, Settings, Trainer, get_recipe, recipe_trainer


class Stop(Exception):
    pass


def noisy_forward(model: Any, x: Any) -> Any:
    """Input noise from the library's global generator (like dropout): resume must restore the RNG."""
    noise = gpunet.random.generator().normal(0.0, 0.1, size=x.shape).astype(x.dtype)
    return model(x + noise)


NOISY = dataclasses.replace(get_recipe("mlp"), name="noisy-mlp", forward=noisy_forward)


def make_trainer(recipe: Recipe, optimizer: str, checkpoint: Path | None = None, progress: Any = None,
                 init_seed: int = 3, epochs: int = 3, checkpoint_every: int = 0) -> Trainer:
    split = load_dataset(recipe.dataset, seed=3)
    gpunet.manual_seed(init_seed)
    model = recipe.build(split.info)
    settings = Settings(epochs=epochs, batch_size=32, lr=0.05 if optimizer == "sgd" else 0.01,
                        optimizer=optimizer, seed=3, momentum=0.9)
    return recipe_trainer(recipe, model, split, settings, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                          progress=progress)


def interrupt_at(step: int, error: type[BaseException] = KeyboardInterrupt) -> Any:
    def progress(event: dict[str, Any]) -> None:
        if event.get("step") == step:
            raise error

    return progress


def assert_same_run(a: Trainer, b: Trainer) -> None:
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        assert numpy.array_equal(to_numpy(state_a[name]), to_numpy(state_b[name])), name
    opt_a, opt_b = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert opt_a["param_groups"] == opt_b["param_groups"] and opt_a["state"].keys() == opt_b["state"].keys()
    for index in opt_a["state"]:
        buffers_a, buffers_b = opt_a["state"][index], opt_b["state"][index]
        assert buffers_a.keys() == buffers_b.keys()
        assert all(numpy.array_equal(to_numpy(buffers_a[k]), to_numpy(buffers_b[k])) for k in buffers_a)
    assert (a.epoch, a.batch, a.step) == (b.epoch, b.batch, b.step)
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in a.history.epochs] == \
           [{k: v for k, v in r.items() if k not in drop} for r in b.history.epochs]


@pytest.mark.parametrize("recipe", [get_recipe("mlp"), NOISY], ids=["mlp", "noisy"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("stop_step", [1, 30, 48])  # first step, mid-epoch 2, last batch of epoch 2
def test_interrupted_run_resumes_bit_identical(tmp_path: Path, recipe: Recipe, optimizer: str,
                                               stop_step: int) -> None:
    reference = make_trainer(recipe, optimizer)
    reference.fit()

    path = tmp_path / "run.npz"
    first = make_trainer(recipe, optimizer, path, progress=interrupt_at(stop_step))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert io.load(path)["step"] == stop_step
    gpunet.random.generator().random(5)  # disturb the global RNG: restore must put it back

    resumed = make_trainer(recipe, optimizer, path, init_seed=99)  # other initial weights: restore wins
    resumed.restore(path)
    assert resumed.step == stop_step
    resumed.fit()
    assert_same_run(reference, resumed)
    if optimizer == "sgd":
        assert all("momentum_buffer" in s for s in resumed.optimizer.state)
    else:
        assert all("exp_avg" in s and "exp_avg_sq" in s for s in resumed.optimizer.state)


def test_interrupt_during_evaluation_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C between an epoch's last step and its record: the saved totals rebuild the record."""
    import gpunet.training.trainer as train_module

    reference = make_trainer(get_recipe("mlp"), "adam", epochs=2)
    reference.fit()
    path = tmp_path / "run.npz"
    first = make_trainer(get_recipe("mlp"), "adam", path, epochs=2)
    original, calls = train_module.evaluate, []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    monkeypatch.undo()
    state = io.load(path)
    assert (state["epoch"], state["batch"]) == (0, len(first.train_loader))
    resumed = make_trainer(get_recipe("mlp"), "adam", path, epochs=2)
    resumed.restore(path)
    resumed.fit()
    assert_same_run(reference, resumed)


def test_signal_during_optimizer_step_saves_a_consistent_state(tmp_path: Path) -> None:
    """SIGINT arriving while parameters are being updated is delivered after the whole step."""
    reference = make_trainer(get_recipe("mlp"), "sgd", epochs=2)
    reference.fit()
    path = tmp_path / "run.npz"
    first = make_trainer(get_recipe("mlp"), "sgd", path, epochs=2)
    real_update = first.optimizer.update
    count = {"n": 0}

    def update_then_signal(p: Any, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        real_update(p, grad, state, group)
        count["n"] += 1
        if count["n"] == 20 * len(first.optimizer.params) + 1:  # after the 1st parameter of step 21
            os.kill(os.getpid(), signal.SIGINT)

    first.optimizer.update = update_then_signal  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert io.load(path)["step"] == 21
    resumed = make_trainer(get_recipe("mlp"), "sgd", path, epochs=2)
    resumed.restore(path)
    resumed.fit()
    assert_same_run(reference, resumed)


def test_periodic_checkpoints_allow_resume_after_a_crash(tmp_path: Path) -> None:
    """An exception that skips the interrupt handler loses only the steps since the last checkpoint."""
    reference = make_trainer(get_recipe("mlp"), "adam", epochs=2)
    reference.fit()
    path = tmp_path / "run.npz"
    crashed = make_trainer(get_recipe("mlp"), "adam", path, progress=interrupt_at(33, Stop), epochs=2,
                           checkpoint_every=5)
    with pytest.raises(Stop):
        crashed.fit()
    assert io.load(path)["step"] == 30
    resumed = make_trainer(get_recipe("mlp"), "adam", path, epochs=2, checkpoint_every=5)
    resumed.restore(path)
    resumed.fit()
    assert_same_run(reference, resumed)


def test_more_epochs_after_resume_continue_the_same_run(tmp_path: Path) -> None:
    reference = make_trainer(get_recipe("mlp"), "adam", epochs=3)
    reference.fit()
    path = tmp_path / "run.npz"
    make_trainer(get_recipe("mlp"), "adam", path, epochs=2).fit()
    longer = make_trainer(get_recipe("mlp"), "adam", path, epochs=3)
    longer.restore(path)
    longer.fit()
    assert_same_run(reference, longer)


def test_training_in_another_thread_gives_the_same_run(tmp_path: Path) -> None:
    """Signal handlers belong to the main thread: elsewhere the step is not guarded, but still runs."""
    reference = make_trainer(get_recipe("mlp"), "sgd", epochs=1)
    reference.fit()
    other = make_trainer(get_recipe("mlp"), "sgd", tmp_path / "run.npz", epochs=1)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            other.fit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=120)
    assert not errors and not thread.is_alive()
    assert_same_run(reference, other)


@pytest.mark.gpu
@pytest.mark.standin  # also runs on the CuPy stand-in (tests/test_on_standin.py)
def test_gpu_run_resumes_exactly_and_its_checkpoint_loads_on_numpy(tmp_path: Path) -> None:
    path = tmp_path / "gpu.npz"
    with gpunet.use("cupy"):
        reference = make_trainer(get_recipe("mlp"), "adam")
        reference.fit()
        first = make_trainer(get_recipe("mlp"), "adam", path, progress=interrupt_at(30))
        with pytest.raises(KeyboardInterrupt):
            first.fit()
        resumed = make_trainer(get_recipe("mlp"), "adam", path, init_seed=99)
        resumed.restore(path)
        resumed.fit()
        assert all(p.device == "cupy" for p in resumed.model.parameters())
        assert_same_run(reference, resumed)
    saved = io.load(path)
    assert all(type(v) is numpy.ndarray for v in saved["model"].values())
    on_cpu = make_trainer(get_recipe("mlp"), "adam", init_seed=99)
    on_cpu.restore(path)
    for name, value in on_cpu.model.state_dict().items():
        assert type(value) is numpy.ndarray and numpy.array_equal(value, saved["model"][name])


def all_recipes() -> list[str]:
    names = sorted(RECIPES)
    assert names == ["gru", "lenet", "linear", "lstm", "mlp", "perceptron", "rnn"]
    return names


@pytest.mark.parametrize("name", all_recipes())
def test_every_recipe_resumes_bit_identical(tmp_path: Path, name: str) -> None:
    """Each model (conv, recurrent with clipping, dense) on a small slice of its own dataset."""
    recipe = get_recipe(name)
    full = load_dataset(recipe.dataset, seed=0)
    split = Split(ArrayDataset(*(a[:64] for a in full.train.arrays)),
                  ArrayDataset(*(a[:32] for a in full.test.arrays)), full.info)
    settings = Settings(epochs=2, batch_size=16, lr=recipe.lr, optimizer=recipe.optimizer, seed=5,
                        momentum=recipe.momentum, clip=recipe.clip)

    def run(progress: Any = None, restore: Path | None = None) -> Trainer:
        gpunet.manual_seed(5 if restore is None else 77)
        trainer = recipe_trainer(recipe, recipe.build(full.info), split, settings, checkpoint=tmp_path / "run.npz",
                                 progress=progress)
        if restore is not None:
            trainer.restore(restore)
        with contextlib.suppress(KeyboardInterrupt):
            trainer.fit()
        return trainer

    reference = run()
    run(progress=interrupt_at(6))
    assert_same_run(reference, run(restore=tmp_path / "run.npz"))


# ----- real processes ---------------------------------------------------------------------
EPOCHS = 2  # of 750 steps each (batch size 1)
CLI = [sys.executable, "-m", "gpunet.cli", "train", "perceptron", "--epochs", str(EPOCHS), "--quiet",
       "--backend", "numpy"]


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GPUNET_QUIET": "1"}
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def start_and_stop(path: Path, min_step: int, sig: int) -> int:
    """Start a run checkpointing every step, wait until its checkpoint reaches ``min_step``, send ``sig``.

    While polling, every read must succeed: a reader never sees a half-written checkpoint.
    Returns the last step seen on disk before the signal.
    """
    env = {**os.environ, "GPUNET_QUIET": "1"}
    args = [*CLI, "--checkpoint", str(path), "--checkpoint-every", "1"]
    if path.exists():
        args.append("--resume")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen, deadline = -1, time.monotonic() + 120
    try:
        while seen < min_step:
            assert proc.poll() is None, f"run ended before step {min_step}: {proc.communicate()}"
            assert time.monotonic() < deadline, "run too slow"
            if path.exists():
                seen = io.load(path)["step"]
            time.sleep(0.01)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130  # "gpunet: interrupted" after saving
    return seen


def final_model(path: Path) -> dict[str, numpy.ndarray]:
    state = io.load(path)
    assert state["epoch"] == EPOCHS and state["batch"] == 0
    return state["model"]


@pytest.mark.slow
def test_sigkilled_cli_run_resumes_bit_identical(tmp_path: Path) -> None:
    reference = tmp_path / "reference.npz"
    run_cli("--checkpoint", str(reference))
    path = tmp_path / "run.npz"
    for min_step in (300, 900):  # epoch 1 mid-way, then epoch 2 mid-way (train split: 750 rows)
        seen = start_and_stop(path, min_step, signal.SIGKILL)
        assert io.load(path)["step"] >= seen  # nothing before the last checkpoint was lost
    run_cli("--checkpoint", str(path), "--resume")
    expected, got = final_model(reference), final_model(path)
    assert expected.keys() == got.keys()
    for name in expected:
        assert numpy.array_equal(expected[name], got[name]), name


@pytest.mark.slow
def test_sigterm_saves_and_resume_finishes_the_same_run(tmp_path: Path) -> None:
    reference = tmp_path / "reference.npz"
    run_cli("--checkpoint", str(reference))
    path = tmp_path / "run.npz"
    start_and_stop(path, 200, signal.SIGTERM)
    done = run_cli("--checkpoint", str(path), "--resume")
    assert "resumed from" in done.stderr
    for name, value in final_model(reference).items():
        assert numpy.array_equal(value, final_model(path)[name]), name
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
