"""The numba-sim cases of tests/ops where numba.cuda is the real target in this process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def simulator_in_process() -> bool:
    """As tests/ops/conftest.py decides it (its ``_use_cudasim_without_gpu`` ran at collection)."""
    if "numba.cuda" in sys.modules:
        return bool(sys.modules["numba.cuda"].config.ENABLE_CUDASIM)
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


@pytest.mark.skipif(simulator_in_process(), reason="the numba-sim cases run in this process")
def test_numba_sim_cases_in_a_subprocess():
    """numba.cuda picked the real target when first imported here (a GPU machine): rerun every
    numba-sim case of tests/ops in a fresh interpreter with the simulator enabled."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not gpu",
                           "-k", "numba-sim", str(Path(__file__).resolve().parent)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and " skipped" not in proc.stdout, proc.stdout[-2000:]
