"""Checkpoints cross backends; ``gpunet train/evaluate --backend cupy`` run end to end on the stand-in."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gpunet
from gpunet import io
from gpunet.backend import is_cupy_array, to_numpy
from gpunet.cli import cli
from gpunet.cli.errors import run_cleanly
from gpunet.models import LeNet
from gpunet.models.rnn import SequenceClassifier


def gpunet_cli(*args):
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        code = run_cleanly(cli, [str(a) for a in args])
    return code, out.getvalue().decode(), err.getvalue().decode()


@pytest.mark.parametrize("make", [lambda: LeNet(10, 1, 8), lambda: SequenceClassifier(5, 3, "gru", 4, 6)])
@pytest.mark.parametrize(("src", "dst"), [("cupy", "numpy"), ("numpy", "cupy")])
def test_checkpoint_crosses_backends(tmp_path, make, src, dst):
    gpunet.manual_seed(1)
    with gpunet.use(src):
        model = make().to(src)
        io.save({"model": dict(model.state_dict())}, tmp_path / "m.npz")
        saved = {k: to_numpy(v) for k, v in model.state_dict().items()}
    gpunet.manual_seed(2)
    with gpunet.use(dst):
        other = make().to(dst)
        other.load_state_dict(io.load(tmp_path / "m.npz")["model"])
        for k, v in other.state_dict().items():
            assert is_cupy_array(v) == (dst == "cupy"), k
            np.testing.assert_array_equal(to_numpy(v), saved[k])


def test_cli_train_lenet_on_cupy_then_evaluate_and_resume_on_both(tmp_path):
    pytest.importorskip("sklearn")
    ckpt, report = tmp_path / "lenet.npz", tmp_path / "lenet.json"
    # --kernels cupy: the emulated raw kernels are exact but slow over a whole epoch (see test_smoke_training)
    code, out, err = gpunet_cli("train", "lenet", "--backend", "cupy", "--kernels", "cupy", "--epochs", "1",
                                "--batch-size", "256", "--quiet", "--checkpoint", ckpt, "--json", report)
    assert code == 0, out + err
    assert "lenet: test accuracy" in out
    record = json.loads(report.read_text())
    assert len(record["history"]) == 1
    for backend in ("numpy", "cupy"):
        code, out, err = gpunet_cli("evaluate", ckpt, "--backend", backend, "--kernels", "cupy")
        assert code == 0, out + err
    code, out, err = gpunet_cli("train", "lenet", "--backend", "numpy", "--epochs", "2", "--batch-size", "256",
                                "--quiet", "--checkpoint", ckpt, "--resume")
    assert code == 0, out + err
    assert io.load(ckpt)["epoch"] == 2


def test_cli_info_reports_the_device():
    code, out, err = gpunet_cli("info")
    assert code == 0, out + err
    assert "A100" in out and "108" not in err


USER_MODELS = """
import gpunet.nn as nn


def classifier():
    return nn.MLP([2, 16, 3], activation="relu")


def regressor():
    return nn.Linear(2, 1)
"""


def test_cli_trains_a_user_model_from_a_file_on_cupy_and_resumes_on_numpy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models.py").write_text(USER_MODELS)
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    x = (np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])[y] + rng.normal(size=(120, 2))).astype(np.float32)
    np.savez("blobs.npz", x=x, y=y)
    np.savez("line.npz", x=x, y=x @ np.array([1.5, -2.0], dtype=np.float32) + 0.5)
    code, out, err = gpunet_cli("train", "models.py:classifier", "--data", "blobs.npz", "--backend", "cupy",
                                "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--quiet",
                                "--checkpoint", "run.npz", "--json", "cls.json")
    assert code == 0, out + err
    history = json.loads((tmp_path / "cls.json").read_text())["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"] and "test_accuracy" in history[-1]
    code, out, err = gpunet_cli("train", "models.py:classifier", "--data", "blobs.npz", "--backend", "numpy",
                                "--epochs", "3", "--batch-size", "16", "--lr", "0.01", "--quiet",
                                "--checkpoint", "run.npz", "--resume")
    assert code == 0, out + err
    assert io.load(tmp_path / "run.npz")["epoch"] == 3
    code, out, err = gpunet_cli("train", "models.py:regressor", "--data", "line.npz", "--backend", "cupy",
                                "--epochs", "4", "--batch-size", "8", "--lr", "0.05", "--quiet", "--json", "-")
    assert code == 0, out + err
    history = json.loads(out)["history"]
    assert history[-1]["train_loss"] < 0.1 * history[0]["train_loss"] and "test_accuracy" not in history[-1]
