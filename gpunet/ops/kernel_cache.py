"""Whether numba's on-disk cache holds gpunet's CPU kernels yet (a fresh install compiles them once).

On a cold cache the first LeNet step compiles for about 20 s and the first LSTM step for about
15 s (2-core machine); later processes load the cache in well under a second. The CLI says so
before the first step instead of looking stuck (:data:`NOTICE`).
"""

from __future__ import annotations

import os

NOTICE = ("gpunet: compiling the CPU kernels for this machine, once (up to about 40 s); "
          "numba caches them on disk for every later run")


def cold() -> bool:
    """True when the conv kernels' cache index is missing (the cache was never filled here)."""
    try:
        from gpunet.ops import conv2d_cpu

        index = conv2d_cpu.forward_parts._cache._cache_file._index_path
    except Exception:  # numba's cache internals moved, or no cache is possible: say nothing
        return False
    return not os.path.exists(index)
