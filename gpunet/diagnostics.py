"""What this machine offers gpunet: versions, BLAS, cores, load, the backend choice, the GPU.

Library code (``gpunet info`` prints :func:`facts`; ``gpunet bench`` records them). Nothing
here imports the CLI or the bench package.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def blas_name() -> str:
    """NumPy's BLAS library and version, as NumPy's build reports it."""
    import numpy

    try:
        deps = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps.get('name')} {deps.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def blas_threads() -> int:
    """Threads NumPy's BLAS uses now (threadpoolctl when installed, else the CPU count)."""
    try:
        from threadpoolctl import threadpool_info

        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    return cpu_cores()


def cpu_cores() -> int:
    """Logical CPUs of this machine (1 when unknown)."""
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else what :mod:`platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """1/5/15-minute load averages (``None`` where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def numba_version() -> str | None:
    """numba's version, ``None`` when it does not import."""
    try:
        import numba
    except ImportError:
        return None
    return str(numba.__version__)


def cupy_version() -> str | None:
    """CuPy's version, ``None`` when it does not import (even without a usable GPU)."""
    try:
        import cupy

        return str(cupy.__version__)
    except Exception:
        return None


def cuda_device(index: int | None = None) -> dict[str, Any]:
    """Facts about CUDA device ``index`` (default: the current one); needs a working CuPy."""
    import cupy

    runtime = cupy.cuda.runtime
    index = cupy.cuda.Device().id if index is None else index
    props = runtime.getDeviceProperties(index)
    name = props["name"]
    return {"name": name.decode() if isinstance(name, bytes) else name, "cupy": cupy.__version__,
            "cuda_runtime": runtime.runtimeGetVersion(), "driver": runtime.driverGetVersion(),
            "devices": runtime.getDeviceCount(), "compute_capability": f"{props['major']}.{props['minor']}",
            "memory_gib": round(props["totalGlobalMem"] / 2**30, 1)}


def distributed_allreduce(gpu_usable: bool) -> str:
    """Which gradient all-reduce ``--distributed`` would use here, and why (MPI is not started)."""
    from gpunet.distributed.reducers import describe_choice

    return describe_choice(gpu_usable)


def facts() -> dict[str, Any]:
    """What ``gpunet info`` shows, in its order, except the kernel table (``kernels``), which
    the CLI adds: versions, cores, BLAS, GPU usability and why, the backend choice and why, CuPy,
    and the all-reduce data-parallel training would use."""
    import numpy

    from gpunet import backend
    from gpunet.version import __version__

    out: dict[str, Any] = {"gpunet": __version__, "python": platform.python_version(),
                           "numpy": numpy.__version__, "cpu_cores": os.cpu_count(), "blas": blas_name(),
                           "numba": numba_version()}
    ok, why = backend.gpu_status()
    out["gpu_usable"], out["gpu_reason"] = ok, why
    out["backend"], out["backend_reason"] = backend.current(), backend.reason()
    if ok:
        d = cuda_device(0)
        out["cupy"] = {"version": d["cupy"], "cuda_runtime": d["cuda_runtime"], "driver": d["driver"],
                       "devices": d["devices"], "device0": d["name"],
                       "compute_capability": d["compute_capability"], "memory_gib": d["memory_gib"]}
    else:
        out["cupy"] = cupy_version()
    out["distributed"] = distributed_allreduce(ok)
    return out
