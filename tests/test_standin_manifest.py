"""The stand-in's API manifest matches the installed CuPy (regenerated here; drift shown as a diff).

When CuPy is upgraded: ``python tests/standin/manifest.py`` rewrites ``tests/standin/cupy_manifest.json``;
review the diff (new names are NotImplementedError on the stand-in until implemented).
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "standin"


def _manifest_module():
    spec = importlib.util.spec_from_file_location("standin_manifest", HERE / "manifest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manifest_matches_the_installed_cupy():
    cupy = sys.modules.get("cupy")
    if cupy is not None and getattr(cupy, "_is_standin", False):
        pytest.skip("'cupy' is the stand-in in this process")
    try:
        import cupy  # noqa: F401
        import cupyx  # noqa: F401
    except Exception as exc:  # not installed, or a broken CUDA library underneath
        pytest.skip(f"cupy is not importable: {exc}")
    manifest = _manifest_module()
    fresh = manifest.dumps(manifest.generate())
    committed = manifest.PATH.read_text(encoding="utf-8")
    if fresh != committed:
        diff = "".join(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True),
                                            "cupy_manifest.json (committed)", "installed CuPy", n=1))
        pytest.fail(f"the installed CuPy differs from tests/standin/cupy_manifest.json; regenerate with "
                    f"`python tests/standin/manifest.py` and review:\n{diff[:20000]}")


def test_manifest_lists_what_gpunet_uses():
    data = json.loads((HERE / "cupy_manifest.json").read_text(encoding="utf-8"))
    cupy = data["modules"]["cupy"]
    for name in ("ndarray", "asarray", "empty", "RawModule", "cuda", "matmul", "ascontiguousarray", "lib"):
        assert name in cupy, name
    assert "getDeviceCount" in data["modules"]["cupy.cuda.runtime"]
    assert "scatter_add" in data["modules"]["cupyx"]
    assert "as_strided" in data["modules"]["cupy.lib.stride_tricks"]
    nccl = data["modules"]["cupy.cuda.nccl"]
    for name in ("NcclCommunicator", "get_unique_id", "groupStart", "groupEnd", "NCCL_FLOAT32", "NCCL_SUM"):
        assert name in nccl, name
    assert data["modules"]["cupy.cuda"]["nccl"] == "module"
