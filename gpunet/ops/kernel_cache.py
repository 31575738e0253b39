"""Whether numba's on-disk cache holds gpunet's CPU kernels yet (a fresh install compiles them once).

On a cold cache the first LeNet training step compiles for about 14 s and the first LSTM step
for about 10 s, and a LeNet forward before them another 20 s (2-core machine); later processes
load the cache in well under a second. ``gpunet train`` says so (:data:`NOTICE`) and compiles
the step's kernels before its first epoch (:func:`gpunet.training.compile_kernels`), then says
how long that took, so the first epoch's time is training time.
"""

from __future__ import annotations

import os

NOTICE = ("gpunet: compiling the CPU kernels for this machine, once (up to about 40 s); "
          "numba caches them on disk for every later run")


def cold() -> bool:
    """True when neither conv kernel's cache index exists (the fused conv-ReLU-pool op's, which
    LeNet and ``Sequential`` stacks use, nor the plain conv2d's): the cache was never filled here."""
    try:
        from gpunet.ops import conv2d_cpu, conv_relu_pool_cpu

        indexes = [kernel._cache._cache_file._index_path
                   for kernel in (conv_relu_pool_cpu.forward_parts, conv2d_cpu.forward_parts)]
    except Exception:  # numba's cache internals moved, or no cache is possible: say nothing
        return False
    return not any(os.path.exists(index) for index in indexes)
