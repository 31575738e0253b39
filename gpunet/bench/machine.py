"""The ``--scaling`` reference: what 1 -> N threads gave on this machine while the workloads ran.

A fixed set of float32 GEMMs (:data:`COUNT` products of :data:`SIDE` x :data:`SIDE` matrices)
split over numba's pool in one region, each thread calling single-threaded BLAS (``np.dot``) on
its share: the pattern of gpunet's CPU kernels, on a workload with no serial part. Its speedup
is about N on an idle machine and shows what other tenants left (cores, memory bandwidth, shared
cache) at the moments the workloads were timed. It does not disturb the samples next to it, as
a threaded BLAS GEMM does (OpenBLAS's own threads spin on after it against numba's).
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy

from gpunet import parallel
from gpunet.ops import regions_cpu  # noqa: F401  (loads the BLAS numba's np.dot calls, at one thread)

SIDE, COUNT = 320, 4
FLOPS = 2 * COUNT * SIDE ** 3
LABEL = f"machine: {COUNT} SGEMMs {SIDE}^3 in a numba region"


@numba.njit(parallel=True, cache=True, nogil=True)
def _gemms(parts, a, b, c):  # pragma: no cover - compiled
    count = a.shape[0]
    for t in numba.prange(parts):
        for k in range(t * count // parts, (t + 1) * count // parts):
            numpy.dot(a[k], b[k], c[k])


def step() -> Callable[[], object]:
    """One step: the :data:`COUNT` products in as many parts as the thread setting allows."""
    rng = numpy.random.default_rng(0)
    a, b = (rng.standard_normal((COUNT, SIDE, SIDE)).astype(numpy.float32) for _ in range(2))
    c = numpy.empty_like(a)

    def run() -> object:
        parts = min(regions_cpu.threads(), COUNT)
        parallel.blas_single()
        _gemms(parts, a, b, c)
        return c

    return run
