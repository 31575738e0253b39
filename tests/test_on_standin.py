"""Run gpunet's CuPy path on the strict CuPy stand-in, in a pytest subprocess.

The stand-in (``tests/standin/cupy``) must not leak into this process: other tests check the NumPy
fallback on a machine without a GPU. So ``tests/on_standin`` is collected only in a subprocess
that has ``tests/standin`` first on ``PYTHONPATH`` and ``GPUNET_STANDIN=1`` (see its conftest);
there raw kernels run with the emulator's blocks shuffled (``GPUNET_EMU_SHUFFLE=1`` unless set).
Run those tests directly while working on them with::

    GPUNET_STANDIN=1 NUMBA_ENABLE_CUDASIM=1 PYTHONPATH=tests/standin:. python -m pytest -q tests/on_standin
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def standin_env() -> dict[str, str]:
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    path = [str(ROOT / "tests" / "standin"), str(ROOT), *inherited]
    return {"GPUNET_EMU_SHUFFLE": "1", **os.environ, "PYTHONPATH": os.pathsep.join(path),
            "GPUNET_STANDIN": "1", "NUMBA_ENABLE_CUDASIM": "1", "GPUNET_QUIET": "1"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="no C++ compiler for the emulator")
def test_cupy_path_on_the_standin() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not gpu",
                           "-rxXs", str(ROOT / "tests" / "on_standin")], cwd=ROOT, env=standin_env(),
                          capture_output=True, text=True, timeout=1500)
    print(proc.stdout[-12000:])
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout, proc.stdout[-3000:]


STANDIN_GPU_FILES = ("tests/functional/test_recurrent_gpu.py", "tests/test_optim_data_gpu.py",
                     "tests/kernels/test_raw_gpu.py", "tests/kernels/test_numba_gpu.py",
                     "tests/distributed/test_gpu.py", "tests/test_io.py", "tests/test_backend.py",
                     "tests/nn/test_new_layers.py", "tests/training/test_resume.py")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="no C++ compiler for the emulator")
def test_gpu_tests_that_run_on_the_standin() -> None:
    """The ``gpu`` tests marked ``standin`` (no timings, device properties or tools) pass on the stand-in."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "standin_plugin",
                           "-m", "gpu and standin", "-rxXs", *(str(ROOT / f) for f in STANDIN_GPU_FILES)],
                          cwd=ROOT, env=standin_env(), capture_output=True, text=True, timeout=900)
    print(proc.stdout[-12000:])
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout and " skipped" not in proc.stdout, \
        proc.stdout[-3000:]


def test_standin_does_not_leak_into_this_process() -> None:
    cupy = sys.modules.get("cupy")
    assert cupy is None or not getattr(cupy, "_is_standin", False)
