"""``gpunet summary / evaluate / filters FILE.py:FUNC`` through the real CLI (subprocesses, no mocks):
they take a user's model as ``train`` does, evaluate on the split ``train`` used, and refuse a
checkpoint of another model, a missing file or function, and missing options in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import user_model_files  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"

MODELS = user_model_files.MODELS + '''

def cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(2 * 6 * 6, 2))
'''


def gpunet(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPUNET_BACKEND": "numpy", "GPUNET_QUIET": "1"}
    env.pop("GPUNET_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gpunet.cli", *args], cwd=folder, capture_output=True, text=True,
                          env=env, timeout=300)


def one_line(done: subprocess.CompletedProcess[str], command: str, code: int = 2) -> str:
    """The single ``gpunet: error: COMMAND: ...`` line of a refused command (no traceback, no output)."""
    assert done.returncode == code, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"gpunet: error: {command}: "), lines
    assert done.stdout == ""
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models.py, three data files and the checkpoints `gpunet train` wrote for them (seed 3)."""
    folder = tmp_path_factory.mktemp("user_commands")
    (folder / "models.py").write_text(MODELS)
    rng = numpy.random.default_rng(0)
    x, y = user_model_files.blobs(rng)
    numpy.savez(folder / "blobs.npz", x=x, y=y)
    numpy.savez(folder / "line.npz", x=x, y=x.astype(numpy.float64) @ numpy.array([1.5, -2.0]) + 0.5)
    images = rng.normal(size=(60, 1, 6, 6)).astype(numpy.float32)
    numpy.savez(folder / "images.npz", x=images, y=(images.mean(axis=(1, 2, 3)) > 0).astype(numpy.int64))
    for func, data in (("classifier", "blobs"), ("regressor", "line"), ("cnn", "images")):
        done = gpunet(folder, "train", f"models.py:{func}", "--data", f"{data}.npz", "--epochs", "2", "--seed", "3",
                      "--checkpoint", f"{func}.npz", "--json", f"{func}.json", "--quiet", "--threads", "1")
        assert done.returncode == 0, done.stderr
    return folder


def final(work: Path, func: str) -> dict:
    return json.loads((work / f"{func}.json").read_text())["history"][-1]


def test_evaluate_a_classifier_on_the_split_train_used(work) -> None:
    done = gpunet(work, "evaluate", "models.py:classifier", "--checkpoint", "classifier.npz", "--data", "blobs.npz",
                  "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["recipe"] == "models.py:classifier" and report["task"] == "classification"
    # the checkpoint's seed (3) picks the same 30 test samples: train's last test metrics, exactly
    assert report["accuracy"] == pytest.approx(final(work, "classifier")["test_accuracy"], abs=1e-9)
    assert report["loss"] == pytest.approx(final(work, "classifier")["test_loss"], rel=1e-5)
    assert sum(map(sum, report["confusion"])) == 30
    text = gpunet(work, "evaluate", "models.py:classifier", "--checkpoint", "classifier.npz", "--data", "blobs.npz")
    assert "models.py:classifier on blobs.npz test split (30 samples)" in text.stdout
    assert "accuracy" in text.stdout and "true\\pred" in text.stdout


def test_evaluate_a_regressor_reports_the_loss_only(work) -> None:
    done = gpunet(work, "evaluate", "models.py:regressor", "--checkpoint", "regressor.npz", "--data", "line.npz")
    assert done.returncode == 0, done.stderr
    assert "loss (MSE)" in done.stdout and "accuracy" not in done.stdout and "true\\pred" not in done.stdout
    report = json.loads(gpunet(work, "evaluate", "models.py:regressor", "--checkpoint", "regressor.npz",
                               "--data", "line.npz", "--json").stdout)
    assert set(report) == {"recipe", "dataset", "task", "loss"} and report["task"] == "regression"
    assert report["loss"] == pytest.approx(final(work, "regressor")["test_loss"], rel=1e-5)


def test_summary_of_a_model_file_with_data_or_an_input_shape(work) -> None:
    with_data = gpunet(work, "summary", "models.py:cnn", "--data", "images.npz")
    assert with_data.returncode == 0, with_data.stderr
    assert with_data.stdout.startswith("models.py:cnn (Sequential) on images.npz")
    assert "Conv2d            (2, 4, 6, 6)" in with_data.stdout and "total parameters: 260" in with_data.stdout
    assert "dense vs conv" in with_data.stdout
    shaped = gpunet(work, "summary", "models.py:classifier", "--input-shape", "2")
    assert shaped.returncode == 0, shaped.stderr
    assert "on input shape (2,)" in shaped.stdout and "total parameters: 99" in shaped.stdout


def test_filters_of_a_model_file_draw_every_conv_layer(work) -> None:
    pytest.importorskip("matplotlib")
    done = gpunet(work, "filters", "models.py:cnn", "--checkpoint", "cnn.npz", "--data", "images.npz",
                  "--out", "cnn-filters.png", "--sample", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "wrote cnn-filters.png"
    assert (work / "cnn-filters.png").read_bytes().startswith(PNG)


REFUSALS = [
    (["evaluate", "models.py:wide_classifier", "--checkpoint", "classifier.npz", "--data", "blobs.npz"],
     "Invalid value for --checkpoint: classifier.npz is a checkpoint of 'models.py:classifier', "
     "not of 'models.py:wide_classifier'"),
    (["evaluate", "models.py:classifier", "--checkpoint", "regressor.npz", "--data", "blobs.npz"],
     "regressor.npz is a checkpoint of 'models.py:regressor', not of 'models.py:classifier'"),
    (["filters", "models.py:classifier", "--checkpoint", "cnn.npz", "--data", "blobs.npz", "--out", "x.png"],
     "cnn.npz is a checkpoint of 'models.py:cnn', not of 'models.py:classifier'"),
    (["evaluate", "edited/models.py:classifier", "--checkpoint", "classifier.npz", "--data", "blobs.npz"],
     "holds another model than 'models.py:classifier' builds now"),
    (["evaluate", "missing.py:build", "--checkpoint", "classifier.npz", "--data", "blobs.npz"],
     "Invalid value for MODEL: model file 'missing.py' does not exist"),
    (["filters", "models.py:nothing", "--checkpoint", "cnn.npz", "--data", "images.npz"],
     "models.py defines no 'nothing'"),
    (["summary", "models.py:not_a_module", "--input-shape", "2"], "returned dict, expected a gpunet Module"),
    (["evaluate", "models.py:classifier", "--data", "blobs.npz"], "Invalid value for --checkpoint: model "
     "'models.py:classifier' from a file needs --checkpoint CKPT"),
    (["filters", "models.py:cnn", "--checkpoint", "cnn.npz"], "needs --data FILE.npz"),
    (["evaluate", "models.py:classifier", "--checkpoint", "gone.npz", "--data", "blobs.npz"],
     "Invalid value for --checkpoint: file 'gone.npz' does not exist"),
    (["evaluate", "classifier.npz", "--data", "blobs.npz"], "Invalid value for --data: is for a model from a file"),
    (["summary", "models.py:classifier"], "needs exactly one of --data FILE.npz and --input-shape"),
    (["summary", "models.py:classifier", "--input-shape", "3"], "does not fit --input-shape (samples of shape (3,)"),
    (["summary", "models.py:classifier", "--dataset", "digits"], "not --dataset 'digits'"),
    (["summary", "mlp", "--input-shape", "2"], "is for a model from a file (FILE.py:FUNC), not the built-in 'mlp'"),
    (["evaluate", "classifier.npz"], "Invalid value for 'CHECKPOINT': classifier.npz holds the model "
     "'models.py:classifier' from a file; run `gpunet evaluate models.py:classifier --checkpoint classifier.npz "
     "--data FILE.npz`"),
    (["filters", "cnn.npz"], "run `gpunet filters models.py:cnn --checkpoint cnn.npz --data FILE.npz`"),
]


@pytest.mark.parametrize(("args", "expected"), REFUSALS, ids=[" ".join(a[:2]) + f" {i}" for i, (a, _) in
                                                            enumerate(REFUSALS)])
def test_each_refusal_is_one_usage_line(work, args, expected) -> None:
    edited = work / "edited"
    edited.mkdir(exist_ok=True)
    (edited / "models.py").write_text(MODELS.replace("[2, 16, 3]", "[2, 4, 3]"))
    assert expected in one_line(gpunet(work, *args), args[0])
    assert not (work / "x.png").exists()


def test_a_built_in_checkpoint_is_refused_for_a_model_file(work) -> None:
    done = gpunet(work, "train", "mlp", "--epochs", "1", "--checkpoint", "mlp.npz", "--quiet", "--threads", "1")
    assert done.returncode == 0, done.stderr
    refused = gpunet(work, "evaluate", "models.py:classifier", "--checkpoint", "mlp.npz", "--data", "blobs.npz")
    assert "mlp.npz is a checkpoint of the built-in model 'mlp', not of 'models.py:classifier'; run " \
           "`gpunet evaluate mlp.npz`" in one_line(refused, "evaluate")


def test_readme_commands_for_your_own_model_run_as_shown(tmp_path) -> None:
    """README's "Train your own model": its files, then every `$ gpunet` line in order; the evaluate and
    summary outputs start as shown and the summary (no training numbers in it) is exactly as shown."""
    section = (ROOT / "README.md").read_text().split("### Train your own model")[1].split("\n## ")[0]
    for block in section.split("```python\n")[1:]:
        code = block.split("```")[0]
        (tmp_path / code.splitlines()[0].removeprefix("# ").split(":")[0]).write_text(code)
    session = section.split("```text\n")[1].split("```")[0]
    commands = [chunk.splitlines() for chunk in session.split("$ ")[1:]]
    assert [lines[0].split()[:2] for lines in commands] == [["python", "make_data.py"], ["gpunet", "train"],
                                                            ["gpunet", "evaluate"], ["gpunet", "summary"]]
    subprocess.run([sys.executable, "make_data.py"], cwd=tmp_path, check=True, timeout=300)
    for command, *shown in commands[1:]:
        done = gpunet(tmp_path, *command.split()[1:])
        assert done.returncode == 0, (command, done.stderr)
        printed = (done.stdout if "train" not in command else done.stderr + done.stdout).splitlines()
        if "train" not in command:
            assert printed[0] == shown[0], command
        if "summary" in command:
            assert printed == shown
