"""Ctrl-C under ``mpiexec -n 2 gpunet train ... --distributed``: every rank stops after the same
step, rank 0 saves the checkpoint and says where, nobody prints a traceback or hangs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from gpunet import io

from .conftest import REPO, _mpiexec

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    return {**os.environ, "GPUNET_QUIET": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _train(*args: str) -> list[str]:
    return [_mpiexec(), "-n", "2", sys.executable, "-m", "gpunet.cli", "train", "mlp", "--distributed",
            "--threads", "1", *args]


def test_ctrl_c_saves_on_rank_zero_and_every_rank_exits_cleanly(mpirun, tmp_path):
    ckpt = tmp_path / "run.npz"
    proc = subprocess.Popen(_train("--epochs", "1000", "--checkpoint", str(ckpt), "--checkpoint-every", "3"),
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, as a terminal's Ctrl-C sees it
    try:
        deadline = time.monotonic() + 90
        while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert ckpt.exists(), proc.communicate(timeout=30)
        time.sleep(0.5)  # in the middle of training
        os.killpg(proc.pid, signal.SIGINT)
        interrupted = time.monotonic()
        out, err = proc.communicate(timeout=60)
        seconds = time.monotonic() - interrupted
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert seconds < 30, err
    assert "Traceback" not in err and "gpunet: error" not in err and "BAD TERMINATION" not in out + err, err
    lines = [line for line in err.splitlines() if line.startswith("gpunet: interrupted")]
    assert len(lines) == 1, err  # rank 0 speaks; rank 1 exits quietly
    path = re.escape(str(ckpt))
    found = re.fullmatch(rf"gpunet: interrupted: at epoch (\d+), batch (\d+); checkpoint saved to {path} "
                         rf"\(continue with --checkpoint {path} --resume\)", lines[0])
    assert found, lines[0]
    state = io.load(ckpt)
    epoch, batch = int(found[1]), int(found[2])
    assert (state["epoch"] + 1, state["batch"]) == (epoch, batch)  # the file holds the step it names
    assert not [p.name for p in tmp_path.iterdir() if p.name != ckpt.name]  # no temporary file left
    out_json = tmp_path / "resumed.json"
    resumed = subprocess.run(_train("--epochs", str(epoch), "--checkpoint", str(ckpt), "--resume", "--quiet",
                                    "--json", str(out_json)),
                             cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert len(json.loads(out_json.read_text())["history"]) == epoch
