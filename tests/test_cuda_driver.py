"""The fallback notice tells apart "no NVIDIA driver", "driver too old" and "no device visible".

No GPU is needed: the classifier is fed the ``CUDARuntimeError`` each case produces (the real
cudaError_t numbers; CuPy's own exception class when CuPy imports, else one shaped like it) and
the facts of the machine (does ``libcuda`` load, the driver's CUDA version, ``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gpunet import backend
from gpunet.cuda import driver
from gpunet.cuda.driver import INSUFFICIENT_DRIVER, NO_DEVICE, STUB_LIBRARY, Facts

NAMES = {35: "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version",
         100: "cudaErrorNoDevice: no CUDA-capable device is detected",
         34: "cudaErrorStubLibrary: CUDA driver is a stub library"}


class FakeCUDARuntimeError(RuntimeError):
    """Shaped like ``cupy_backends.cuda.api.runtime.CUDARuntimeError``: ``status`` and the named text."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(NAMES[status])


def runtime_error(status: int) -> RuntimeError:
    try:
        import cupy
    except Exception:
        return FakeCUDARuntimeError(status)
    return cupy.cuda.runtime.CUDARuntimeError(status)


NO_LIBCUDA = Facts("libcuda.so.1: cannot open shared object file: No such file or directory", 0, 12090, None)
OLD_DRIVER = Facts(None, 11040, 12090, None)
GOOD_DRIVER = Facts(None, 12090, 12090, None)


def classify(status: int, facts: Facts) -> str:
    exc = runtime_error(status)
    return driver.explain(driver.status_of(exc), f"{type(exc).__name__}: {exc}", facts)


def test_status_comes_from_the_exception_or_its_text() -> None:
    assert driver.status_of(runtime_error(INSUFFICIENT_DRIVER)) == 35
    assert driver.status_of(RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")) == 100
    assert driver.status_of(RuntimeError("something else")) is None


def test_no_driver_at_all_is_not_called_too_old() -> None:
    """No driver: the runtime answers cudaErrorInsufficientDriver (35), libcuda does not load."""
    why = classify(INSUFFICIENT_DRIVER, NO_LIBCUDA)
    assert backend.short_reason(why) == "no NVIDIA driver is installed"
    assert "libcuda.so.1" in why and "too old" not in why
    # libcuda loads but reports driver version 0, or only the stub library is there: still no driver
    assert classify(INSUFFICIENT_DRIVER, Facts(None, 0, 12090, None)).startswith("no NVIDIA driver")
    assert classify(STUB_LIBRARY, GOOD_DRIVER).startswith("no NVIDIA driver")


def test_driver_too_old_names_both_versions() -> None:
    why = classify(INSUFFICIENT_DRIVER, OLD_DRIVER)
    assert backend.short_reason(why) == "the NVIDIA driver is too old for this CuPy build"
    assert "CUDA 11.4" in why and "CUDA 12.9" in why and "update the driver" in why


def test_no_device_visible_points_at_cuda_visible_devices() -> None:
    hidden = classify(NO_DEVICE, Facts(None, 12090, 12090, ""))
    assert backend.short_reason(hidden) == "no CUDA device is visible with CUDA_VISIBLE_DEVICES=''"
    plain = classify(NO_DEVICE, GOOD_DRIVER)
    assert backend.short_reason(plain) == "no CUDA device is visible" and "CUDA_VISIBLE_DEVICES" not in plain
    assert "nvidia-smi" in plain


def test_the_three_cases_read_differently() -> None:
    gists = {backend.short_reason(classify(s, f)) for s, f in
             [(INSUFFICIENT_DRIVER, NO_LIBCUDA), (INSUFFICIENT_DRIVER, OLD_DRIVER), (NO_DEVICE, GOOD_DRIVER)]}
    assert len(gists) == 3


@pytest.mark.parametrize(("status", "facts", "gist"), [
    (INSUFFICIENT_DRIVER, NO_LIBCUDA, "no NVIDIA driver is installed"),
    (INSUFFICIENT_DRIVER, OLD_DRIVER, "the NVIDIA driver is too old for this CuPy build"),
    (NO_DEVICE, Facts(None, 12090, 12090, "7"), "no CUDA device is visible with CUDA_VISIBLE_DEVICES='7'"),
])
def test_the_auto_fallback_notice_says_which(monkeypatch, capsys, status: int, facts: Facts, gist: str) -> None:
    """Through ``gpunet.use("auto")`` with CuPy's probe raising what each machine raises."""
    cupy = pytest.importorskip("cupy")
    monkeypatch.setitem(backend._state, "gpu", None)
    monkeypatch.setattr(backend, "_noticed", set())
    monkeypatch.delenv("GPUNET_QUIET", raising=False)

    def count() -> int:
        raise runtime_error(status)

    monkeypatch.setattr(cupy.cuda.runtime, "getDeviceCount", count)
    monkeypatch.setattr(driver, "facts", lambda: facts)
    with backend.use("auto"):
        assert backend.current() == "numpy"
    assert capsys.readouterr().err == f"gpunet: using NumPy (CPU): {gist}\n"
    monkeypatch.setitem(backend._state, "gpu", None)


def test_a_cupy_import_that_fails_on_libcuda_is_no_driver(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "cupy":
            raise ImportError("libcuda.so.1: cannot open shared object file: No such file or directory")
        return real_import(name, *args, **kwargs)

    monkeypatch.setitem(backend._state, "gpu", None)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    ok, why = backend.gpu_status()
    monkeypatch.setitem(backend._state, "gpu", None)
    assert not ok and backend.short_reason(why) == "no NVIDIA driver is installed" and "libcuda.so.1" in why


def test_this_machine_without_a_driver_says_so_in_a_fresh_process() -> None:
    """The real case: CuPy installed, no libcuda at all (the CUDA runtime answers code 35)."""
    pytest.importorskip("cupy")
    if driver._load_libcuda() is None:
        pytest.skip("libcuda loads here: this machine has an NVIDIA driver")
    env = {k: v for k, v in os.environ.items() if k not in ("GPUNET_QUIET", "GPUNET_BACKEND")}
    done = subprocess.run([sys.executable, "-c", "import gpunet; gpunet.use('auto')"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "gpunet: using NumPy (CPU): no NVIDIA driver is installed\n"
