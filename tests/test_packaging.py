"""The wheel ships every subpackage and the CUDA C sources (as gpunet._kernels)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")


def _declared_packages() -> set[str]:
    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_every_subpackage_is_declared():
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "gpunet").rglob("__init__.py")}
    assert found | {"gpunet._kernels"} == _declared_packages()


@pytest.mark.slow
def test_wheel_contains_kernel_sources(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("gpunet-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for source in sorted(p.name for p in (REPO / "kernels").glob("*.cu")):
        assert f"gpunet/_kernels/{source}" in names
    assert "gpunet/cli/__init__.py" in names and "gpunet/ops/registry.py" in names


def test_cuda13_extra_is_real():
    """``cuda13`` names the CUDA 13 wheels (cupy-cuda13x from 13.6, numba-cuda's cu13 extra from
    0.19.2), and the CUDA 13 arch list has no sm_70 (nvcc 13 dropped Volta)."""
    from gpunet.cuda.archs import archs_for

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "cupy-cuda13x>=13.6" in extras["cuda13"] and "numba-cuda[cu13]>=0.19.2" in extras["cuda13"]
    assert not any("cuda12" in req or "cu12" in req for req in extras["cuda13"])
    assert "sm_70" not in archs_for(13) and "sm_70" in archs_for(12)
    with pytest.raises(ValueError, match="CUDA major"):
        archs_for(11)
