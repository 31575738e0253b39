"""raw_ops plumbing that needs no GPU: finding the sources, and ``available()`` without one."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from gpunet import backend
from gpunet.cuda import raw_ops, sources
from gpunet.ops import catalog, registry

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", catalog.HOT_OPS + catalog.SEQUENCE_OPS)
def test_every_hot_op_has_a_launcher_with_the_reference_signature(name):
    """``table()`` is built from HOT_OPS, so comparing its keys with HOT_OPS proved nothing:
    check what the registry relies on, a RawOps method per op with the reference's exact signature."""
    ops = raw_ops.RawOps(runtime=None)  # type: ignore[arg-type]
    launcher = ops.table()[name]
    assert callable(launcher) and launcher.__self__ is ops
    assert launcher.__func__ is getattr(raw_ops.RawOps, name)
    assert inspect.signature(launcher) == inspect.signature(_reference(name))


def _reference(name):
    """The reference of a hot op; a whole-sequence forward's reference is its own docstring'd signature."""
    if name in catalog.SEQUENCE_OPS:
        return getattr(raw_ops.RawOps, name).__get__(raw_ops.RawOps(runtime=None))  # type: ignore[arg-type]
    return registry.get(name, "numpy-ref").load()


def test_sources_found_in_checkout():
    for name in raw_ops.KERNELS:
        assert sources.kernel_path(name) == REPO / "kernels" / name


def test_sources_found_in_installed_wheel_layout(tmp_path, monkeypatch):
    """A wheel ships kernels/ as the package gpunet._kernels (pyproject package-dir)."""
    monkeypatch.delenv(sources.ENV_VAR, raising=False)
    pkg = tmp_path / "site-packages" / "gpunet"
    (pkg / "_kernels").mkdir(parents=True)
    (pkg / "_kernels" / "conv2d.cu").write_text("// wheel copy\n")
    assert sources.kernel_path("conv2d.cu", package_dir=pkg) == pkg / "_kernels" / "conv2d.cu"
    assert sources.read_kernel("conv2d.cu", package_dir=pkg) == "// wheel copy\n"


def _wheel_packages(tool: dict) -> set[str]:
    """Packages setuptools puts in the wheel, per [tool.setuptools] of pyproject.toml."""
    from setuptools import find_packages

    packages = tool.get("packages")
    if isinstance(packages, list):
        return set(packages)
    find = (packages or {}).get("find", {})
    return set(find_packages(where=str(REPO), include=find.get("include", ["*"])))


def test_pyproject_ships_kernels_in_the_wheel():
    tomllib = pytest.importorskip("tomllib")
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["package-dir"].get("gpunet._kernels") == "kernels"
    assert "*.cu" in tool["package-data"]["gpunet._kernels"]
    assert "gpunet._kernels" in _wheel_packages(tool)


def test_missing_source_error_lists_the_search(tmp_path, monkeypatch):
    monkeypatch.setenv(sources.ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nope.cu.*searched.*_kernels"):
        sources.kernel_path("nope.cu", package_dir=tmp_path / "gpunet")


def test_env_var_overrides(tmp_path, monkeypatch):
    (tmp_path / "conv2d.cu").write_text("// override\n")
    monkeypatch.setenv(sources.ENV_VAR, str(tmp_path))
    assert sources.kernel_path("conv2d.cu") == tmp_path / "conv2d.cu"


@pytest.mark.skipif(backend.gpu_status()[0], reason="a GPU is usable here")
def test_available_is_empty_without_gpu():
    assert raw_ops.available() == {}
