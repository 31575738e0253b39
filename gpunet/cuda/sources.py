"""Locate the CUDA C sources (``kernels/*.cu``) in a checkout or an installed wheel.

In a checkout they live in ``<repo>/kernels/``; a wheel ships the same folder as the package
``gpunet._kernels`` (see ``[tool.setuptools] package-dir`` in pyproject.toml). The environment
variable ``GPUNET_KERNEL_DIR`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "GPUNET_KERNEL_DIR"


def candidate_dirs(package_dir: Path | None = None) -> list[Path]:
    """Folders searched for kernel sources, in order."""
    pkg = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parents[1]
    dirs = [pkg / "_kernels", pkg.parent / "kernels"]
    if os.environ.get(ENV_VAR):
        dirs.insert(0, Path(os.environ[ENV_VAR]))
    return dirs


def kernel_path(name: str, package_dir: Path | None = None) -> Path:
    """Path of kernel source ``name`` (e.g. ``"conv2d.cu"``); FileNotFoundError lists the search."""
    dirs = candidate_dirs(package_dir)
    for folder in dirs:
        path = folder / name
        if path.is_file():
            return path
    searched = ", ".join(str(d) for d in dirs)
    raise FileNotFoundError(f"gpunet: CUDA kernel source {name!r} not found (searched: {searched}); "
                            f"reinstall gpunet or set {ENV_VAR}")


def read_kernel(name: str, package_dir: Path | None = None) -> str:
    """Text of kernel source ``name``."""
    return kernel_path(name, package_dir).read_text(encoding="utf-8")
