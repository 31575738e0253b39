"""Helpers for the data-parallel tests: run a command under ``mpiexec -n N`` (skipped, with the
reason, when mpi4py or mpiexec is missing; CI installs the ``mpi`` extra so they run there)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("mpi_worker.py")


def _mpiexec() -> str | None:
    beside = Path(sys.executable).with_name("mpiexec")  # the mpich wheel puts it next to python
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def mpi_missing() -> str | None:
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install -e '.[mpi]')"
    if _mpiexec() is None:
        return "no mpiexec on PATH or beside the interpreter (pip install -e '.[mpi]')"
    return None


class MPIRun:
    def __call__(self, n: int, *args: str, timeout: float = 120, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
        full_env = {**os.environ, "GPUNET_QUIET": "1", "PYTHONPATH": os.pathsep.join(
            [str(REPO), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1", **(env or {})}
        command = [_mpiexec(), "-n", str(n), sys.executable, *args]
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env,
                                cwd=cwd or REPO)
        return result, time.monotonic() - started


@pytest.fixture
def mpirun() -> MPIRun:
    why = mpi_missing()
    if why:
        pytest.skip(why)
    return MPIRun()
