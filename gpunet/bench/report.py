"""The benchmark record: environment facts, the text table, the JSON file."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from gpunet import diagnostics

ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "GPUNET_BACKEND", "GPUNET_KERNELS")


def _gpu() -> dict[str, Any] | None:
    from gpunet import backend

    if backend.current() != "cupy":
        return None
    d = diagnostics.cuda_device()
    return {k: d[k] for k in ("name", "cupy", "cuda_runtime", "driver", "compute_capability")}


def environment() -> dict[str, Any]:
    """Versions, CPU, BLAS, threads, the environment variables that change timings, the GPU if any."""
    import numpy

    from gpunet import backend
    from gpunet.version import __version__

    return {"gpunet": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "blas": diagnostics.blas_name(), "blas_threads": diagnostics.blas_threads(),
            "cpu": diagnostics.cpu_model(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "platform": platform.platform(), "backend": backend.current(), "backend_reason": backend.reason(),
            "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ}, "gpu": _gpu(),
            "load_average": diagnostics.load_average()}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _row(label: str, ms: dict[str, Any] | None, gflops: float | None, ratio: str) -> str:
    ms = ms or {}
    spread = "-" if ms.get("min") is None else _fmt(ms["min"]) + ".." + _fmt(ms["max"])
    return (f"{'':<11}{label:<30}{_fmt(ms.get('median')):>9}{_fmt(ms.get('iqr')):>8}{spread:>18}"
            f"{'-' if gflops is None else f'{gflops:.2f}':>9}{ratio:>23}")


def _ratio_text(ratio: dict[str, Any] | None, prefix: str = "") -> str:
    if not ratio or f"{prefix}ratio" not in ratio:
        return ""
    by_min = ratio.get(f"{prefix}min_ratio")
    return f"{ratio[prefix + 'ratio']:.3g}x" + (f"{by_min:>9.3g}x" if by_min is not None else f"{'-':>10}")


def format_table(record: dict[str, Any]) -> str:
    """A text table: one block per workload, one row per implementation (and a ``CPU time`` row
    under it when the process CPU time was recorded)."""
    s = record["settings"]
    clocks = "wall clock; 'CPU time' rows: process CPU time" if s.get("cpu_time") else "wall clock"
    lines = [f"backend {s['backend']}, kernels {', '.join(s['kernels'])}, {s['threads']} thread(s), "
             f"repeat {s['repeat']}, warmup {s['warmup']}; times are ms per step ({clocks})",
             f"{'workload':<11}{'implementation':<30}{'median':>9}{'IQR':>8}{'min..max':>18}"
             f"{'GFLOP/s':>9}{'gpunet/peer':>13}{'(by min)':>10}"]
    for w in record["workloads"]:
        lines.append(f"{w['name']:<11}{w['description']}  [{w['flops'] / 1e6:,.2f} MFLOP/step]")
        ratios = {r["peer"]: r for r in w["ratios"] if r["gpunet"] == w.get("best")}
        for run in w["runs"]:
            label = run["label"]
            if "error" in run:
                lines.append(f"{'':<11}{label:<30}  {run['error']}")
                continue
            if run.get("ms") is not None or run.get("cpu_ms") is None:
                lines.append(_row(label, run.get("ms"), run.get("gflops"), _ratio_text(ratios.get(label))))
            if run.get("cpu_ms") is not None:
                cpu_label = "  CPU time" if run.get("ms") is not None else f"{label} (CPU)"
                lines.append(_row(cpu_label, run["cpu_ms"], None, _ratio_text(ratios.get(label), "cpu_")))
            extra = []
            if run.get("first_step_ms") is not None:
                extra.append(f"first step {_fmt(run['first_step_ms'])} ms")
            if run.get("peak_mib") is not None:
                extra.append(f"peak {run['peak_mib']:.1f} MiB allocated per step")
            if extra:
                lines.append(f"{'':<13}{', '.join(extra)}")
        for sc in w.get("scaling", []):
            lines.append(f"{'':<11}scaling {sc['implementation']}: 1 -> {sc['threads'][1]} threads "
                         f"{sc['speedup']:.2f}x (by min {sc['min_speedup']:.2f}x)")
    for item in record["skipped"]:
        lines.append(f"{item['workload']:<11}skipped: {item['reason']}")
    for note in record["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def write_json(record: dict[str, Any], path: str | Path) -> Path:
    """Write ``record`` as indented JSON (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
