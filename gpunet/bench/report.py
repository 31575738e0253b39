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


HEADER = ("workload", "implementation", "median", "IQR", "min..max", "GFLOP/s", "gpunet/peer", "(by min)")
_GAP = "  "


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _cells(label: str, ms: dict[str, Any] | None, gflops: float | None,
           ratio: dict[str, Any] | None, prefix: str = "") -> list[str]:
    """One timed row: blank workload cell, label, median, IQR, min..max, GFLOP/s, ratio, ratio by min."""
    ms = ms or {}
    spread = "-" if ms.get("min") is None else _fmt(ms["min"]) + ".." + _fmt(ms["max"])
    by_ratio = by_min = ""
    if ratio and f"{prefix}ratio" in ratio:
        by_ratio = f"{ratio[prefix + 'ratio']:.3g}x"
        low = ratio.get(f"{prefix}min_ratio")
        by_min = "-" if low is None else f"{low:.3g}x"
    return ["", label, _fmt(ms.get("median")), _fmt(ms.get("iqr")), spread,
            "-" if gflops is None else f"{gflops:.2f}", by_ratio, by_min]


Item = list[str] | tuple[str, str] | str


def _layout(items: list[Item]) -> list[str]:
    """Aligned lines: a list of cells is a table row (text columns left, numbers right, every row
    the same column widths); a pair ``(workload, text)`` puts free text (a workload heading, an
    error, first-step facts) after the workload column; a plain string is printed as is."""
    rows = [item for item in items if isinstance(item, list)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    widths[0] = max([widths[0]] + [len(item[0]) for item in items if isinstance(item, tuple)])
    lines = []
    for item in items:
        if isinstance(item, str):
            lines.append(item)
        elif isinstance(item, tuple):
            lines.append(item[0].ljust(widths[0]) + _GAP + item[1])
        else:
            cells = [cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(item, widths))]
            lines.append(_GAP.join(cells).rstrip())
    return lines


def format_table(record: dict[str, Any]) -> str:
    """A text table: one block per workload, one row per implementation (and a ``CPU time`` row
    under it when the process CPU time was recorded); the columns line up across all blocks."""
    s = record["settings"]
    clocks = "wall clock; 'CPU time' rows: process CPU time" if s.get("cpu_time") else "wall clock"
    items: list[Item] = [f"backend {s['backend']}, kernels {', '.join(s['kernels'])}, "
                                    f"{s['threads']} thread(s), repeat {s['repeat']}, warmup {s['warmup']}; "
                                    f"times are ms per step ({clocks})", list(HEADER)]
    for w in record["workloads"]:
        items.append((w["name"], f"{w['description']}  [{w['flops'] / 1e6:,.2f} MFLOP/step]"))
        ratios = {r["peer"]: r for r in w["ratios"] if r["gpunet"] == w.get("best")}
        for run in w["runs"]:
            label = run["label"]
            if "error" in run:
                items.append(("", f"{label}: {run['error']}"))
                continue
            if run.get("ms") is not None or run.get("cpu_ms") is None:
                items.append(_cells(label, run.get("ms"), run.get("gflops"), ratios.get(label)))
            if run.get("cpu_ms") is not None:
                cpu_label = "  CPU time" if run.get("ms") is not None else f"{label} (CPU)"
                items.append(_cells(cpu_label, run["cpu_ms"], None, ratios.get(label), "cpu_"))
            extra = []
            if run.get("first_step_ms") is not None:
                extra.append(f"first step {_fmt(run['first_step_ms'])} ms")
            if run.get("peak_mib") is not None:
                extra.append(f"peak {run['peak_mib']:.1f} MiB allocated per step")
            if extra:
                items.append(("", "  " + ", ".join(extra)))
        for sc in w.get("scaling", []):
            items.append(("", f"scaling {sc['implementation']}: 1 -> {sc['threads'][1]} threads "
                              f"{sc['speedup']:.2f}x (by min {sc['min_speedup']:.2f}x)"))
    for item in record["skipped"]:
        items.append((item["workload"], f"skipped: {item['reason']}"))
    for note in record["notes"]:
        items.append(f"note: {note}")
    return "\n".join(_layout(items))


def to_json(record: dict[str, Any]) -> str:
    """``record`` as indented JSON text."""
    return json.dumps(record, indent=2, default=float) + "\n"


def write_json(record: dict[str, Any], path: str | Path) -> Path:
    """Write ``record`` as indented JSON (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(record))
    return path
