"""The backend switch: auto, forced, fallback with the real cupy installed, mixed arrays."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import gpunet
from gpunet import backend


@pytest.fixture
def fresh_probe(monkeypatch):
    """Forget the cached GPU probe so a test can fake what the machine has."""
    monkeypatch.setitem(backend._state, "gpu", None)
    yield
    backend._state["gpu"] = None


def test_numpy_forced():
    with gpunet.use("numpy") as xp:
        assert xp is np
        assert backend.current() == "numpy"
        assert gpunet.tensor([1.0, 2.0]).device == "numpy"


@pytest.mark.skipif(backend.gpu_status()[0], reason="this machine has a usable GPU")
def test_auto_falls_back_to_numpy_with_a_reason():
    with gpunet.use("auto", quiet=True):
        assert backend.current() == "numpy"
        assert "fell back to NumPy because" in backend.reason()


@pytest.mark.skipif(backend.gpu_status()[0], reason="this machine has a usable GPU")
def test_forced_cupy_without_gpu_says_why_and_how():
    with pytest.raises(gpunet.BackendError) as info:
        gpunet.use("cupy")
    text = str(info.value)
    assert "not usable" in text and "gpunet.use('numpy')" in text and "cuda12" in text
    assert backend.current() == "numpy"  # a failed switch changes nothing


def test_real_cupy_installed_falls_back_cleanly_in_a_fresh_process():
    code = ("import gpunet, sys; gpunet.use('auto'); "
            "print(gpunet.current_backend()); print(gpunet.gpu_status()[1])")
    env = {k: v for k, v in os.environ.items() if k not in ("GPUNET_QUIET", "GPUNET_BACKEND")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    chosen, why = result.stdout.splitlines()[:2]
    ok = backend.gpu_status()[0]
    assert chosen == ("cupy" if ok else "numpy")
    if not ok:
        assert "using NumPy (CPU)" in result.stderr  # one short notice
        assert result.stderr.count("gpunet:") == 1
        assert why


def test_environment_variable_selects_backend():
    code = "import gpunet; print(gpunet.current_backend())"
    env = {**os.environ, "GPUNET_BACKEND": "numpy"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.strip() == "numpy"
    assert result.stderr == ""  # forced numpy prints no notice


def test_cupy_not_installed_is_reported(monkeypatch, fresh_probe):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    ok, why = backend.gpu_status()
    assert not ok and "not installed" in why and "gpunet[cuda12]" in why
    with gpunet.use("auto", quiet=True):
        assert backend.current() == "numpy"


def test_no_device_is_reported(monkeypatch, fresh_probe):
    cupy = pytest.importorskip("cupy")
    monkeypatch.setattr(cupy.cuda.runtime, "getDeviceCount", lambda: 0)
    ok, why = backend.gpu_status()
    assert not ok and "no CUDA device" in why


def test_use_is_a_scoped_context_manager():
    """Leaving ``with gpunet.use(...)`` restores the previous backend and its reason, also when
    the body raises. The scope picks "auto", whose reason differs from the outer "NumPy forced"
    on every machine, so a scope that never restores cannot pass."""
    gpunet.use("numpy")
    outer = (backend.current(), backend.reason())
    assert outer == ("numpy", "NumPy forced")
    with gpunet.use("auto", quiet=True):
        inner = (backend.current(), backend.reason())
    assert inner != outer and inner[1].startswith("auto: ")  # the scope did switch
    assert (backend.current(), backend.reason()) == outer
    with pytest.raises(RuntimeError, match="body failed"), gpunet.use("auto", quiet=True):
        raise RuntimeError("body failed")
    assert (backend.current(), backend.reason()) == outer
    gpunet.use("auto", quiet=True)  # without `with` the switch is global and stays
    assert backend.reason() == inner[1]


def test_unknown_backend_name():
    with pytest.raises(gpunet.BackendError, match="expected one of"):
        gpunet.use("tpu")


class _FakeCupyArray:
    """Stands in for cupy.ndarray: gpunet recognises CuPy arrays by their module."""

    __module__ = "cupy._core.core"


def test_mixed_numpy_and_cupy_arrays_raise():
    with pytest.raises(gpunet.DeviceMismatchError, match="NumPy and CuPy arrays met"):
        gpunet.get_array_module(np.zeros(2), _FakeCupyArray())


def test_get_array_module_numpy_and_scalars():
    assert gpunet.get_array_module(np.zeros(2), 3.0) is np
    assert gpunet.get_array_module() is np


def test_tensor_numpy_copy_and_to(backend_name):
    t = gpunet.tensor([[1.0, 2.0]])
    assert t.device == backend_name
    host = t.numpy()
    assert isinstance(host, np.ndarray) and host.dtype == np.float32
    np.testing.assert_array_equal(host, [[1.0, 2.0]])
    assert t.to("numpy").device == "numpy" and t.to(backend_name).device == backend_name
    model = gpunet.nn.Linear(2, 3)
    assert model.weight.device == backend_name
    assert model.to("numpy") is model and model.weight.device == "numpy"


@pytest.mark.gpu
@pytest.mark.standin  # also runs on the CuPy stand-in (tests/test_on_standin.py)
def test_tensor_and_module_move_between_backends():
    t = gpunet.tensor([1.0, 2.0]).to("cupy")
    assert t.device == "cupy"
    model = gpunet.nn.Linear(2, 3).to("cupy")
    assert all(p.device == "cupy" for p in model.parameters())
    assert model.to("numpy").weight.device == "numpy"
    with pytest.raises(gpunet.DeviceMismatchError):
        _ = gpunet.tensor([1.0, 2.0]) + t
