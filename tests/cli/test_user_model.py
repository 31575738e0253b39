"""``gpunet train FILE.py:FUNC --data FILE.npz`` through the real CLI (subprocesses, no mocks):
a user's classifier and regressor train, the split and resume work, and every refusal is one
``gpunet: error: train: ...`` line with exit code 2 before any epoch starts.

Each subprocess pays ~1 s of imports, so the finer refusals and the seeded split run the same
command in-process (``run_cleanly``, what the console script calls), keeping the file under a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import user_model_files  # noqa: E402

MODELS = user_model_files.MODELS + '''

NOT_CALLABLE = 3


def raises():
    raise RuntimeError("broken on purpose")
'''


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with models.py, broken.py and the data files of the tests (tiny: each run takes seconds)."""
    folder = tmp_path_factory.mktemp("user_model")
    (folder / "models.py").write_text(MODELS)
    (folder / "broken.py").write_text("def build(:\n")
    x, y = user_model_files.blobs(numpy.random.default_rng(0))
    numpy.savez(folder / "blobs.npz", x=x, y=y)
    numpy.savez(folder / "blobs_split.npz", x=x[:100], y=y[:100], x_test=x[100:], y_test=y[100:])
    line = (x.astype(numpy.float64) @ numpy.array([1.5, -2.0]) + 0.5).astype(numpy.float64)
    numpy.savez(folder / "line.npz", x=x.astype(numpy.float64), y=line)
    bad = {
        "no_y": {"x": x},
        "extra": {"x": x, "y": y, "labels": y},
        "half_test": {"x": x, "y": y, "x_test": x},
        "text_x": {"x": numpy.array(["a"] * 150), "y": y},
        "bool_y": {"x": x, "y": y > 0},
        "short_y": {"x": x, "y": y[:149]},
        "y_2d": {"x": x, "y": numpy.stack([y, y], axis=1)},
        "empty": {"x": x[:0], "y": y[:0]},
        "labels_5": {"x": x, "y": numpy.where(y == 2, 5, y)},
        "negative": {"x": x, "y": y - 1},
        "five_features": {"x": numpy.zeros((150, 5), numpy.float32), "y": y},
        "nan_x": {"x": numpy.where(y[:, None] == 0, numpy.nan, x), "y": y},
        "objects": {"x": numpy.array([None] * 150, dtype=object), "y": y},
    }
    for name, arrays in bad.items():
        numpy.savez(folder / f"{name}.npz", **arrays)
    (folder / "text.npz").write_text("not an archive")
    return folder


def gpunet(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPUNET_BACKEND": "numpy", "GPUNET_QUIET": "1"}
    env.pop("GPUNET_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gpunet.cli", "train", *args, "--threads", "1"], cwd=folder,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def in_process(work, run_cli, monkeypatch) -> Callable[..., Any]:
    """``in_process(*args)``: the same command run in this process, in ``work`` (no import cost)."""
    monkeypatch.chdir(work)
    return lambda *args: run_cli("train", *args, "--threads", "1")


def losses(history: list[dict]) -> list[tuple]:
    return [tuple(v for k, v in record.items() if k != "seconds") for record in history]


def test_a_classifier_from_a_file_trains_and_reports_accuracy(work) -> None:
    done = gpunet(work, "models.py:classifier", "--data", "blobs.npz", "--epochs", "8", "--batch-size", "16",
                  "--lr", "0.01", "--json", "run.json")
    assert done.returncode == 0, done.stderr
    assert "training models.py:classifier on blobs.npz (120 train / 30 test)" in done.stderr
    assert "epoch 8/8" in done.stderr and "test acc" in done.stderr
    report = json.loads((work / "run.json").read_text())
    history = report["history"]
    assert report["model"] == "models.py:classifier" and report["task"] == "classification"
    assert len(history) == 8 and {"train_loss", "test_loss", "train_accuracy", "test_accuracy"} <= set(history[0])
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["test_accuracy"] > 0.9  # well separated blobs
    assert "models.py:classifier: test accuracy" in done.stdout


def test_a_regressor_from_a_file_trains_with_mse_and_no_accuracy(work) -> None:
    done = gpunet(work, "models.py:regressor", "--data", "line.npz", "--epochs", "6", "--batch-size", "8",
                  "--lr", "0.05", "--json", "-")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # standard output carries only the JSON
    history = report["history"]
    assert report["task"] == "regression" and report["dataset"] == "line.npz"
    assert set(history[0]) == {"epoch", "train_loss", "test_loss", "seconds"}
    assert history[-1]["train_loss"] < 0.1 * history[0]["train_loss"]
    assert history[-1]["test_loss"] < 0.1 * history[0]["test_loss"]
    assert "test loss (MSE)" in done.stderr and "acc" not in done.stderr


def test_given_test_arrays_are_used_and_the_split_is_seeded(work, in_process) -> None:
    given = gpunet(work, "models.py:classifier", "--data", "blobs_split.npz", "--epochs", "1")
    assert given.returncode == 0, given.stderr
    assert "(100 train / 50 test)" in given.stderr  # the file's own test arrays, not a 20% split
    runs = [in_process("models.py:classifier", "--data", "blobs.npz", "--epochs", "1",
                       "--seed", seed, "--quiet", "--json", "-") for seed in ("1", "1", "2")]
    assert all(r.code == 0 for r in runs), runs
    first, again, other = (losses(json.loads(r.stdout)["history"]) for r in runs)
    assert first == again and first != other


def test_checkpoint_and_resume_continue_the_run_exactly(work, in_process) -> None:
    common = ("models.py:classifier", "--data", "blobs.npz", "--batch-size", "16", "--quiet")
    whole = gpunet(work, *common, "--epochs", "3", "--json", "whole.json")
    half = gpunet(work, *common, "--epochs", "1", "--checkpoint", "run.npz")
    assert whole.returncode == 0 and half.returncode == 0, whole.stderr + half.stderr
    rest = gpunet(work, *common, "--epochs", "3", "--checkpoint", "run.npz", "--resume", "--json", "rest.json")
    assert rest.returncode == 0, rest.stderr
    assert "resumed from run.npz at epoch 2" in rest.stderr
    expected = losses(json.loads((work / "whole.json").read_text())["history"])
    assert losses(json.loads((work / "rest.json").read_text())["history"]) == expected
    # another model, or the same file's model with another shape, is refused before training
    before = (work / "run.npz").read_bytes()
    refused = gpunet(work, "models.py:wide_classifier", "--data", "blobs.npz", "--epochs", "5",
                     "--checkpoint", "run.npz", "--resume")
    assert "run.npz is a checkpoint of 'models.py:classifier', not of 'models.py:wide_classifier'" in \
        one_line_usage_error(refused)
    edited = work / "edited"
    edited.mkdir()
    (edited / "models.py").write_text(MODELS.replace("[2, 16, 3]", "[2, 4, 3]"))
    for args, expected_text in (
            (["edited/models.py:classifier", "--data", "blobs.npz"], "another model than 'models.py:classifier'"),
            (["models.py:classifier", "--data", "blobs_split.npz"], "trained on 'blobs.npz', not on 'blobs_split")):
        refused = in_process(*args, "--epochs", "5", "--checkpoint", "run.npz", "--resume")
        assert expected_text in one_line_usage_error(refused)
    assert (work / "run.npz").read_bytes() == before


def one_line_usage_error(done: Any) -> str:
    """The single ``gpunet: error: train: ...`` line of a refused run; asserts no epoch started."""
    assert getattr(done, "returncode", getattr(done, "code", None)) == 2, done.stderr
    assert "Traceback" not in done.stderr and "Usage:" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gpunet: error: train: "), lines
    assert "epoch 1/" not in done.stderr and done.stdout == ""
    return lines[0]


# the refusals the issue names, each in its own process
REFUSALS = [
    (["missing.py:build", "--data", "blobs.npz"], "model file 'missing.py' does not exist"),
    (["models.py", "--data", "blobs.npz"], "expected FILE.py:FUNC"),
    (["models.py:nothing", "--data", "blobs.npz"], "models.py defines no 'nothing'; its functions: ['classifier'"),
    (["models.py:NOT_CALLABLE", "--data", "blobs.npz"], "models.py:NOT_CALLABLE is not a function (got int)"),
    (["models.py:raises", "--data", "blobs.npz"], "models.py:raises() raised RuntimeError: broken on purpose"),
    (["models.py:not_a_module", "--data", "blobs.npz"], "returned dict, expected a gpunet Module"),
    (["models.py:classifier", "--data", "blobs.npz", "--dataset", "digits"], "not on --dataset 'digits'"),
    (["models.py:classifier", "--data", "no_y.npz"], "'no_y.npz' lacks ['y']"),
    (["models.py:classifier", "--data", "bool_y.npz"], "y has dtype bool; expected integer class labels or floating"),
    (["models.py:classifier", "--data", "short_y.npz"], "x has 150 samples but y has 149"),
    (["models.py:classifier", "--data", "y_2d.npz"], "integer y (class labels) must be 1-D, got shape (150, 2)"),
    (["models.py:classifier", "--data", "empty.npz"], "x is empty"),
    (["models.py:classifier", "--data", "labels_5.npz"], "labels must be in 0..2"),
]

# more refusals, run in-process (the same code path, without the ~1 s start of a process)
MORE_REFUSALS = [
    (["broken.py:build", "--data", "blobs.npz"], "importing 'broken.py' raised SyntaxError"),
    (["models.py:classifier"], "needs --data FILE.npz"),
    (["mlp", "--data", "blobs.npz"], "--data trains a model from a file"),
    (["models.py:classifier", "--data", "blobs.npz", "--data-dir", "."], "not on --data-dir '.'"),
    (["models.py:classifier", "--data", "nothing.npz"], "data file 'nothing.npz' does not exist"),
    (["models.py:classifier", "--data", "text.npz"], "'text.npz' is not an .npz archive"),
    (["models.py:classifier", "--data", "extra.npz"], "has unexpected arrays ['labels']"),
    (["models.py:classifier", "--data", "half_test.npz"], "lacks ['y_test']"),
    (["models.py:classifier", "--data", "text_x.npz"], "x has dtype <U1; expected floating inputs"),
    (["models.py:classifier", "--data", "negative.npz"], "holds labels -1..1"),
    (["models.py:classifier", "--data", "five_features.npz"], "does not fit x (samples of shape (5,)"),
    (["models.py:classifier", "--data", "nan_x.npz"], "x holds 100 NaN/inf value(s)"),
    (["models.py:classifier", "--data", "objects.npz"], "without pickles"),
    (["models.py:classifier", "--data", "line.npz"], "floating y (regression targets) has shape ()"),
    (["models.py:regressor", "--data", "blobs.npz"], "needs one logit per class"),
]

OUTPUTS = ("refused.npz", "refused.json")


@pytest.mark.parametrize(("args", "expected"), REFUSALS, ids=[" ".join(a) for a, _ in REFUSALS])
def test_each_refusal_is_one_usage_line_before_any_epoch(work, args, expected) -> None:
    done = gpunet(work, *args, "--epochs", "1", "--checkpoint", OUTPUTS[0], "--json", OUTPUTS[1])
    assert expected in one_line_usage_error(done)
    assert not any((work / name).exists() for name in OUTPUTS)  # no checkpoint, no report: nothing ran


@pytest.mark.parametrize(("args", "expected"), MORE_REFUSALS, ids=[" ".join(a) for a, _ in MORE_REFUSALS])
def test_more_refusals_in_process(work, in_process, args, expected) -> None:
    done = in_process(*args, "--epochs", "1", "--checkpoint", OUTPUTS[0], "--json", OUTPUTS[1])
    assert expected in one_line_usage_error(done)
    assert not any((work / name).exists() for name in OUTPUTS)


def test_the_readme_example_runs_as_written(tmp_path) -> None:
    """README's "Train your own model": its two files and its command, exactly as shown."""
    section = (ROOT / "README.md").read_text().split("### Train your own model")[1].split("\n## ")[0]
    for block in section.split("```python\n")[1:]:
        code = block.split("```")[0]
        (tmp_path / code.splitlines()[0].removeprefix("# ").split(":")[0]).write_text(code)
    command = next(line for line in section.splitlines() if line.startswith("$ gpunet train")).split()[3:]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPUNET_BACKEND": "numpy", "GPUNET_QUIET": "1"}
    subprocess.run([sys.executable, "make_data.py"], cwd=tmp_path, check=True, env=env, timeout=300)
    done = subprocess.run([sys.executable, "-m", "gpunet.cli", "train", *command, "--json", "-", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    history = json.loads(done.stdout)["history"]
    assert len(history) == 20 and history[-1]["test_accuracy"] > 0.95
