"""The prepared GPU check script: its help, its refusal of bad options, and its dry run on a GPU-less machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gpunet

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.sh"


def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, GPUNET_QUIET="1")
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_help_describes_the_steps() -> None:
    done = run("--help")
    assert done.returncode == 0
    for words in ("gpu-marked tests", "compute-sanitizer", "gpunet bench", "Exit codes"):
        assert words in done.stdout


def test_unknown_option_is_a_one_line_usage_error() -> None:
    done = run("--bogus")
    assert done.returncode == 2
    assert done.stderr.strip() == "gpu_check: error: unknown option --bogus (see --help)"


@pytest.mark.skipif(gpunet.gpu_status()[0], reason="a GPU is usable here: the real check would run")
def test_dry_run_stops_at_no_gpu(tmp_path: Path) -> None:
    done = run("--out", str(tmp_path))
    assert done.returncode == 3, done.stderr
    assert "gpu_check: no GPU" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing installed


@pytest.mark.gpu
def test_gpu_check_passes_on_a_real_device(tmp_path: Path) -> None:
    done = run("--out", str(tmp_path), "--quick", timeout=600)
    assert done.returncode == 0, done.stdout[-4000:]
    assert list(tmp_path.glob("gpu-*.json"))
