"""Tests that run gpunet's CuPy path on the strict CuPy stand-in (``tests/standin``).

Collected only when ``GPUNET_STANDIN=1``: ``tests/test_on_standin.py`` runs this folder in a pytest
subprocess with ``tests/standin`` first on ``PYTHONPATH`` (so ``import cupy`` is the stand-in)
and ``NUMBA_ENABLE_CUDASIM=1`` (numba kernels on the simulator). In the normal test process the
stand-in never loads, so the other tests keep seeing the real CuPy without a GPU.

numba kernels run on the simulator through ``tests/standin/standin_plugin.py``'s adapter.
"""

from __future__ import annotations

import os
import sys

import pytest

ACTIVE = os.environ.get("GPUNET_STANDIN") == "1"

if not ACTIVE:
    collect_ignore_glob = ["*"]
else:
    import cupy

    if not getattr(cupy, "_is_standin", False):
        raise RuntimeError(f"GPUNET_STANDIN=1 but 'import cupy' gave {cupy.__file__}; put tests/standin "
                           f"first on PYTHONPATH (tests/test_on_standin.py does)")


if ACTIVE:
    import standin_plugin

    standin_plugin.numba_adapter()


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Kernel choices are cached per settings; start each test from clean probes."""
    from gpunet.ops import registry

    registry.clear_probes()
    yield
    registry.clear_probes()


def standin_counts():
    return sys.modules["cupy"]._standin
