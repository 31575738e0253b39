"""The benchmark record: environment facts, the text table, the JSON file."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

SCHEMA = "gpunet-bench/1"
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "GPUNET_BACKEND", "GPUNET_KERNELS")


def blas_threads() -> int:
    """Threads NumPy's BLAS uses now (threadpoolctl when installed, else the CPU count)."""
    try:
        from threadpoolctl import threadpool_info

        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    return os.cpu_count() or 1


def _blas_name() -> str:
    from gpunet.cli.info import blas_name

    return blas_name()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu() -> dict[str, Any] | None:
    from gpunet import backend

    if backend.current() != "cupy":
        return None
    import cupy

    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return {"name": name.decode() if isinstance(name, bytes) else name, "cupy": cupy.__version__,
            "cuda_runtime": runtime.runtimeGetVersion(), "driver": runtime.driverGetVersion(),
            "compute_capability": f"{props['major']}.{props['minor']}"}


def environment() -> dict[str, Any]:
    """Versions, CPU, BLAS, threads, the environment variables that change timings, the GPU if any."""
    import numpy

    import gpunet
    from gpunet import backend

    return {"gpunet": gpunet.__version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "blas": _blas_name(), "blas_threads": blas_threads(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "backend": backend.current(), "backend_reason": backend.reason(),
            "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ}, "gpu": _gpu(),
            "load_average": _load()}


def _load() -> list[float] | None:
    """1/5/15-minute load averages: other processes competing for the cores skew CPU timings."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _fmt(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def format_table(record: dict[str, Any]) -> str:
    """A text table: one block per workload, one row per implementation."""
    s = record["settings"]
    lines = [f"backend {s['backend']}, kernels {', '.join(s['kernels'])}, {s['threads']} thread(s), "
             f"repeat {s['repeat']}, warmup {s['warmup']}; times are ms per step",
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
            ms = run["ms"]
            ratio = f"{ratios[label]['ratio']:.3g}x{ratios[label]['min_ratio']:>9.3g}x" if label in ratios else ""
            lines.append(f"{'':<11}{label:<30}{_fmt(ms['median']):>9}{_fmt(ms['iqr']):>8}"
                         f"{_fmt(ms['min']) + '..' + _fmt(ms['max']):>18}{run['gflops']:>9.2f}{ratio:>23}")
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
