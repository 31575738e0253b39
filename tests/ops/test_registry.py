"""The one rule of gpunet.ops.registry: which implementation runs an op on which device."""

from __future__ import annotations

import pytest

import gpunet
from gpunet.ops import catalog, registry


@pytest.fixture
def fake_op():
    """A throwaway op with every kind of implementation; probes say what we tell them."""
    reasons: dict[str, str | None] = {"raw": None, "numba": None, "numpy-fast": None}
    module = __name__
    for name, device in (("numpy-ref", "numpy"), ("numpy-fast", "numpy"), ("cupy", "cupy"), ("raw", "cupy"),
                         ("numba", "cupy")):
        probe = f"{module}:_probe_{name.replace('-', '_')}" if name in reasons else None
        registry.register("fake_op", name, f"{module}:IMPL_{name.replace('-', '_').upper()}", device=device,
                          probe=probe)
    _REASONS.clear()
    _REASONS.update(reasons)
    yield _REASONS
    registry._registry.pop("fake_op")
    registry._cache.clear()
    registry.clear_probes()


_REASONS: dict[str, str | None] = {}
IMPL_NUMPY_REF, IMPL_NUMPY_FAST, IMPL_CUPY, IMPL_RAW, IMPL_NUMBA = "ref", "fast", "cupy", "raw", "numba"


def _probe_raw():
    return _REASONS["raw"]


def _probe_numba():
    return _REASONS["numba"]


def _probe_numpy_fast():
    return _REASONS["numpy-fast"]


def test_numpy_takes_the_fast_path_unless_fast_paths_is_off(fake_op):
    assert registry.lookup("fake_op", "numpy") == "fast"
    with gpunet.using(fast_paths=False):
        assert registry.lookup("fake_op", "numpy") == "ref"


def test_an_unusable_fast_path_falls_back_to_the_reference(fake_op):
    fake_op["numpy-fast"] = "no compiler"
    registry.clear_probes()
    assert registry.lookup("fake_op", "numpy") == "ref"


def test_auto_prefers_raw_then_numba_then_cupy_and_says_why(fake_op, capsys, monkeypatch):
    monkeypatch.delenv("GPUNET_QUIET", raising=False)
    assert registry.lookup("fake_op", "cupy") == "raw"
    fake_op["raw"] = "NVRTC failed"
    registry.clear_probes()
    assert registry.lookup("fake_op", "cupy") == "numba"
    assert "not using the raw kernels: NVRTC failed" in capsys.readouterr().err
    fake_op["numba"] = "no driver"
    registry.clear_probes()
    assert registry.lookup("fake_op", "cupy") == "cupy"


def test_an_explicit_choice_that_cannot_run_is_a_clear_error(fake_op):
    fake_op["raw"] = "NVRTC failed"
    registry.clear_probes()
    with gpunet.config.set_kernels("raw"), pytest.raises(registry.KernelUnavailableError,
                                                          match="the raw implementation of fake_op cannot run here: "
                                                                "NVRTC failed"):
        registry.lookup("fake_op", "cupy")


def test_an_op_without_the_chosen_kernel_runs_the_gpu_reference():
    """An op with no kernel of the chosen kind runs the CuPy reference (a fake op with only the
    references); pooling has raw kernels (kernels/pool.cu)."""
    registry.register("fake_pool_op", "numpy-ref", "gpunet.ops.pool:MAX_REFERENCE", device="numpy")
    registry.register("fake_pool_op", "cupy", "gpunet.ops.pool:MAX_REFERENCE", device="cupy")
    try:
        for kernels in ("raw", "numba"):
            with gpunet.config.set_kernels(kernels):
                assert registry.resolve("fake_pool_op", "cupy").name == "cupy"
    finally:
        registry._registry.pop("fake_pool_op")
    assert {"raw", "cupy"} <= {impl.name for impl in registry.implementations("max_pool2d")}
    assert {"raw", "cupy"} <= {impl.name for impl in registry.implementations("avg_pool2d")}


def test_every_op_has_a_reference_on_both_devices():
    for op in registry.ops():
        names = {impl.name for impl in registry.implementations(op)}
        if op in catalog.SEQUENCE_OPS:
            continue  # raw-only kernels, reached through recurrent_inference
        assert {"numpy-ref", "cupy"} <= names, op


def test_unknown_op_and_implementation_name_the_registered_ones():
    with pytest.raises(KeyError, match="unknown op 'nope'"):
        registry.lookup("nope", "numpy")
    with pytest.raises(KeyError, match="has no implementation 'tpu'"):
        registry.get("conv2d", "tpu")
