"""Test-wide setup: the NumPy backend by default, quiet notices, a backend fixture.

Tests that need a real CUDA device are marked ``gpu`` and deselected on the CPU with
``-m "not gpu"``. A backend-agnostic test takes the ``backend_name`` fixture to run its body
once per backend (e.g. tests/nn/test_hooks.py, tests/nn/test_module.py, tests/test_backend.py);
its CuPy run is marked ``gpu``.
"""

from __future__ import annotations

import os

os.environ.setdefault("GPUNET_QUIET", "1")

import pytest  # noqa: E402

import gpunet  # noqa: E402


@pytest.fixture(autouse=True)
def _numpy_backend_and_seed():
    """Every test starts on NumPy with seed 0 and float32 defaults, and restores them after."""
    gpunet.use("numpy")
    gpunet.manual_seed(0)
    gpunet.set_default_dtype("float32")
    yield
    gpunet.use("numpy")
    gpunet.set_default_dtype("float32")


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend_name(request):
    """Run the test body once per backend, inside ``gpunet.use(name)`` (the CuPy run needs a GPU)."""
    with gpunet.use(request.param):
        yield request.param
