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
