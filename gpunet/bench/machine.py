"""The ``--scaling`` reference: how much of N cores this machine gave during the run.

A fixed amount of dependent arithmetic (a multiply-add chain: no memory traffic, no
vectorisation) cut into one part per thread and run in numba's pool, the same pool as gpunet's
kernels. Its 1 -> N speedup is N on an idle machine; on a shared VM it shows what the other
tenants left, at the moments the workloads were timed. It does not disturb the samples next to
it, unlike a BLAS GEMM, whose own threads spin on after it against numba's.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy

#: Multiply-adds per step (about 5 ms on one core at 3 GHz).
CHAIN = 2_000_000


@numba.njit(parallel=True, cache=True, nogil=True)
def _chains(parts, length, out):  # pragma: no cover - compiled
    for t in numba.prange(parts):
        x = 0.0
        for _ in range(length):
            x = x * 0.999999 + 1.0
        out[t] = x


def step() -> Callable[[], object]:
    """One step: :data:`CHAIN` multiply-adds in as many parts as numba has threads now."""
    out = numpy.empty(64)

    def run() -> object:
        parts = numba.get_num_threads()
        _chains(parts, CHAIN // parts, out)
        return out

    return run


FLOPS = 2 * CHAIN
LABEL = "machine: numba multiply-add chains"
