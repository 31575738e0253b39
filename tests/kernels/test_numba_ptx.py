"""Every numba.cuda kernel compiles to PTX for real GPUs (no GPU needed), and assembles.

NVVM (libnvvm from the ``nvidia-cuda-nvcc-cu12`` wheel) turns each kernel into PTX for several
compute capabilities and both dtypes; ``ptxas`` from the same wheel then assembles it to SASS,
reporting registers and spills. This needs numba's real CUDA target, not the simulator this
session may have switched on, so the compilation runs once in a subprocess (this file run as a
script) and the tests check its JSON report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TARGETS = [(7, 0), (8, 0), (9, 0)]
DTYPES = ["float32", "float64"]
CONV = ["forward", "backward_input", "backward_weight"]
CELLS = ["rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
         "gru_backward"]


def _ptxas() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("nvidia.cuda_nvcc")
    for root in (spec.submodule_search_locations or []) if spec else []:
        exe = Path(root) / "bin" / "ptxas"
        if exe.is_file():
            return exe
    return None


def _assemble(ptx: str, cc: tuple[int, int]) -> dict[str, Any]:
    """ptxas ``-v`` statistics: registers, spill bytes, shared bytes (or ``error``)."""
    exe = _ptxas()
    if exe is None:
        return {"error": "ptxas not found: install nvidia-cuda-nvcc-cu12 (it also ships libnvvm)"}
    proc = subprocess.run([str(exe), f"-arch=sm_{cc[0]}{cc[1]}", "-v", "-o", os.devnull, "-"],
                          input=ptx, capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr[-2000:]}
    info = proc.stderr
    number = lambda pattern: int(m.group(1)) if (m := re.search(pattern, info)) else 0  # noqa: E731
    return {"registers": number(r"Used (\d+) registers"),
            "spills": number(r"(\d+) bytes spill stores") + number(r"(\d+) bytes spill loads"),
            "smem": number(r"(\d+) bytes smem")}


def compile_all() -> list[dict[str, Any]]:
    """Compile every kernel for every target and dtype (run with numba's real CUDA target)."""
    from numba import cuda

    from gpunet.cuda import numba_cells, numba_conv

    assert not cuda.config.ENABLE_CUDASIM, "compile_all needs numba's real CUDA target"
    jobs = [(f"conv_{op}", numba_conv.get_kernel(op, dt), numba_conv.signature(op, dt), dt)
            for op in CONV for dt in DTYPES]
    jobs += [(f"cell_{name}", numba_cells.get_kernels(dt)[name], numba_cells.signature(name, dt),
              dt) for name in CELLS for dt in DTYPES]
    report = []
    for name, kernel, sig, dtype in jobs:
        for cc in TARGETS:
            row: dict[str, Any] = {"kernel": name, "dtype": dtype, "cc": list(cc)}
            try:
                ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cc)
            except Exception as exc:  # reported, then failed by the test
                row["error"] = f"{type(exc).__name__}: {exc}"[-3000:]
            else:
                row |= {"target": re.search(r"\.target\s+(\w+)", ptx).group(1),
                        "entries": len(re.findall(r"\.visible \.entry", ptx)),
                        "f64_ops": len(re.findall(r"\.f64\b", ptx)),
                        "bar_sync": "bar.sync" in ptx or "barrier.sync" in ptx,
                        "shared": ".shared" in ptx, "local": ".local" in ptx,
                        "ptxas": _assemble(ptx, cc)}
            report.append(row)
    return report


@pytest.fixture(scope="module")
def report() -> dict[tuple[str, str, tuple[int, int]], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve())], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    return {(r["kernel"], r["dtype"], tuple(r["cc"])): r for r in rows}


KERNELS = [f"conv_{op}" for op in CONV] + [f"cell_{name}" for name in CELLS]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_compiles_for_real_targets(report: dict, kernel: str, dtype: str) -> None:
    for cc in TARGETS:
        row = report[(kernel, dtype, cc)]
        assert "error" not in row, row["error"]
        assert row["target"] == f"sm_{cc[0]}{cc[1]}" and row["entries"] == 1
        # float32 kernels do float32 arithmetic only (dtype-typed constants, tanhf)
        assert (row["f64_ops"] == 0) == (dtype == "float32"), row["f64_ops"]
        # micro-tiles and gate values live in registers, never in local memory
        assert not row["local"]
        if kernel.startswith("conv_"):
            assert row["shared"] and row["bar_sync"]
        asm = row["ptxas"]
        assert "error" not in asm, asm["error"]
        assert asm["spills"] == 0 and asm["registers"] <= 255, asm


if __name__ == "__main__":
    print(json.dumps(compile_all()))
