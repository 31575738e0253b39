"""``gpunet info``: what this machine offers gpunet."""

from __future__ import annotations

import json
import os
import platform
from typing import Any

import click


def collect() -> dict[str, Any]:
    """Versions, the backend choice and why, GPU details, usable kernel implementations, BLAS, cores."""
    import numpy

    import gpunet
    from gpunet import backend

    facts: dict[str, Any] = {"gpunet": gpunet.__version__, "python": platform.python_version(),
                             "numpy": numpy.__version__, "cpu_cores": os.cpu_count(), "blas": blas_name()}
    try:
        import numba

        facts["numba"] = numba.__version__
    except ImportError:
        facts["numba"] = None
    ok, why = backend.gpu_status()
    facts["gpu_usable"], facts["gpu_reason"] = ok, why
    facts["backend"], facts["backend_reason"] = backend.current(), backend.reason()
    facts["cupy"] = _cupy_facts() if ok else _cupy_version()
    facts["kernels"] = _kernel_facts(ok)
    return facts


def blas_name() -> str:
    """NumPy's BLAS library and version, as NumPy's build reports it."""
    import numpy

    try:
        deps = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps.get('name')} {deps.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def _cupy_version() -> str | None:
    try:
        import cupy

        return cupy.__version__
    except Exception:
        return None


def _cupy_facts() -> dict[str, Any]:
    import cupy

    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(0)
    name = props["name"]
    return {"version": cupy.__version__, "cuda_runtime": runtime.runtimeGetVersion(),
            "driver": runtime.driverGetVersion(), "devices": runtime.getDeviceCount(),
            "device0": name.decode() if isinstance(name, bytes) else name,
            "compute_capability": f"{props['major']}.{props['minor']}",
            "memory_gib": round(props["totalGlobalMem"] / 2**30, 1)}


def _kernel_facts(gpu: bool) -> dict[str, str]:
    facts = {"cupy": "usable" if gpu else "needs a CUDA device"}
    for impl in ("raw", "numba"):
        if not gpu:
            facts[impl] = "needs a CUDA device"
            continue
        from gpunet.ops import registry

        reasons = registry.usable(impl)
        ok = [op for op, why in reasons.items() if why is None]
        facts[impl] = f"usable ({len(ok)} ops)" if ok else f"not available: {next(iter(reasons.values()), '?')}"
    return facts


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def info(as_json: bool) -> None:
    """Version, chosen backend and why, CUDA/device details, usable kernels, numba, BLAS, cores.

    \b
    Examples:
      gpunet info
      GPUNET_BACKEND=numpy gpunet info --json
    """
    facts = collect()
    if as_json:
        click.echo(json.dumps(facts, indent=2, default=str))
        return
    for key, value in facts.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k:<20} {v}")
        else:
            click.echo(f"{key:<22} {value}")
