"""Every CLI error is one ``gpunet: error: ...`` line (exit 2 for usage, 1 for failures); runs are
protected before any training: an existing checkpoint, unwritable outputs, missing optional packages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BAD_INVOCATIONS = [
    (["train", "lenet", "--dataset", "credit"], "takes the dataset(s) digits, mnist; got 'credit'"),
    (["train", "nosuchmodel"], "unknown model 'nosuchmodel'"),
    (["train", "mlp", "--dataset", "nosuchdata"], "unknown dataset 'nosuchdata'"),
    (["train", "mlp", "--bogus"], "No such option '--bogus'"),
    (["train", "mlp", "--epochs", "x"], "'--epochs'"),
    (["train", "mlp", "--optimizer", "foo"], "'--optimizer'"),
    (["train"], "Missing argument 'MODEL'"),
    (["nosuchcommand"], "No such command 'nosuchcommand'"),
    (["evaluate"], "Missing argument 'CHECKPOINT|FILE.py:FUNC'"),
    (["bench", "--repeat", "0"], "'--repeat'"),
    (["info", "--bogus"], "No such option '--bogus'"),
    (["filters"], "Missing argument 'CHECKPOINT|FILE.py:FUNC'"),
    (["summary", "lenet", "--dataset", "dna"], "takes the dataset(s) digits, mnist"),
    (["train", "mlp", "--resume"], "--resume needs --checkpoint"),
    (["train", "mlp", "--json", "/no/such/folder/run.json"], "folder '/no/such/folder'"),
    (["train", "mlp", "--plot", "/no/such/folder/run.png"], "--plot"),
]


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPUNET_BACKEND": "numpy"}
    env.pop("GPUNET_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gpunet.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, **kwargs)


def _single_error_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr and "Usage:" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gpunet: error: "), lines
    return lines[0]


@pytest.mark.parametrize(("args", "expected"), BAD_INVOCATIONS, ids=[" ".join(a) for a, _ in BAD_INVOCATIONS])
def test_usage_errors_are_one_line_with_exit_2(args, expected) -> None:
    done = _run(args)
    assert done.returncode == 2, done.stderr
    assert expected in _single_error_line(done)
    assert "epoch 1/" not in done.stderr and done.stdout == ""


def test_an_existing_checkpoint_is_refused_before_training(tmp_path) -> None:
    path = tmp_path / "run.npz"
    path.write_bytes(b"precious")
    done = _run(["train", "mlp", "--epochs", "1", "--checkpoint", str(path)])
    assert done.returncode == 2
    line = _single_error_line(done)
    assert "--resume" in line and "--overwrite" in line and str(path) in line
    assert path.read_bytes() == b"precious"  # untouched: no epoch ran
    assert "epoch 1/" not in done.stdout + done.stderr


def test_overwrite_replaces_and_excludes_resume(tmp_path) -> None:
    path = tmp_path / "run.npz"
    path.write_bytes(b"old")
    done = _run(["train", "mlp", "--epochs", "1", "--checkpoint", str(path), "--overwrite", "--quiet"])
    assert done.returncode == 0, done.stderr
    assert path.read_bytes() != b"old"
    both = _run(["train", "mlp", "--checkpoint", str(path), "--overwrite", "--resume"])
    assert both.returncode == 2 and "exclude each other" in _single_error_line(both)


def test_unwritable_json_is_refused_before_any_epoch(tmp_path) -> None:
    if os.geteuid() == 0:
        target = tmp_path / "a-folder"
        target.mkdir()  # a folder is not writable as a file, even for root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "run.json"
    done = _run(["train", "mlp", "--epochs", "50", "--json", str(target)])
    assert done.returncode == 2
    assert "--json" in _single_error_line(done)
    assert "epoch 1/" not in done.stderr + done.stdout


def test_plot_without_matplotlib_is_refused_before_training(tmp_path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "matplotlib.py").write_text("raise ImportError('blocked for the test')\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}", "GPUNET_BACKEND": "numpy"}
    script = ("import sys, importlib.util, importlib.machinery\n"
              "real = importlib.util.find_spec\n"
              "importlib.util.find_spec = lambda n, *a: None if n == 'matplotlib' else real(n, *a)\n"
              "from gpunet.cli import main\nsys.argv = ['gpunet'] + sys.argv[1:]\nmain()\n")
    done = subprocess.run([sys.executable, "-c", script, "train", "mlp", "--plot", str(tmp_path / "c.png")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2
    line = _single_error_line(done)
    assert "--plot" in line and "matplotlib" in line
    assert "epoch 1/" not in done.stderr


def test_json_dash_writes_only_json_to_stdout() -> None:
    done = _run(["train", "mlp", "--epochs", "2", "--json", "-"])
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["model"] == "mlp" and len(record["history"]) == 2
    assert "test accuracy" in done.stderr


def test_mlp_trains_on_images_by_flattening_them() -> None:
    pytest.importorskip("sklearn")
    done = _run(["train", "mlp", "--dataset", "digits", "--epochs", "3", "--json", "-", "--quiet"])
    assert done.returncode == 0, done.stderr
    history = json.loads(done.stdout)["history"]
    assert history[-1]["test_accuracy"] > 0.5  # 10 classes: chance is 0.1


def test_quiet_silences_the_backend_notice() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GPUNET_BACKEND", "GPUNET_QUIET")}
    env["PYTHONPATH"] = str(ROOT)
    args = [sys.executable, "-m", "gpunet.cli", "train", "linear", "--epochs", "1", "--backend", "auto"]
    loud = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    quiet = subprocess.run([*args, "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert loud.returncode == quiet.returncode == 0, loud.stderr + quiet.stderr
    from gpunet import backend

    if backend.current() != "numpy":
        pytest.skip("a usable GPU: there is no fallback notice")
    assert "gpunet: using NumPy (CPU)" in loud.stderr
    assert "gpunet: using NumPy" not in quiet.stderr


def test_interrupt_says_where_the_checkpoint_is(tmp_path) -> None:
    path = tmp_path / "run.npz"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPUNET_BACKEND": "numpy"}
    proc = subprocess.Popen([sys.executable, "-m", "gpunet.cli", "train", "lenet", "--epochs", "500",
                             "--checkpoint", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.monotonic() + 240
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)  # the first epoch's checkpoint: training is under way
    assert path.exists(), "no epoch finished"
    proc.send_signal(signal.SIGTERM)  # treated like Ctrl-C
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    last = err.strip().splitlines()[-1]
    assert last.startswith("gpunet: interrupted: at epoch ") and f"checkpoint saved to {path}" in last
    assert "--resume" in last and "Traceback" not in err
