"""``no_grad`` (context manager and decorator), ``enable_grad``, ``set_grad_enabled``,
``inference_mode``, and PyTorch's ``gpunet.cuda`` questions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gpunet

REPO = Path(__file__).resolve().parents[2]


def recorded() -> bool:
    return (gpunet.ones(1, requires_grad=True) * 2).requires_grad


def test_no_grad_as_context_manager_and_both_decorator_forms():
    with gpunet.no_grad():
        assert not recorded() and not gpunet.is_grad_enabled()
    assert recorded()

    @gpunet.no_grad()
    def called() -> bool:
        return recorded()

    @gpunet.no_grad
    def bare() -> bool:
        return recorded()

    assert called() is False and bare() is False and recorded()
    assert called.__name__ == "called" and bare.__name__ == "bare"


def test_no_grad_instance_is_reusable_and_nests():
    scope = gpunet.no_grad()
    with scope:
        with scope:
            assert not recorded()
        assert not recorded()
    assert recorded()


def test_enable_grad_inside_no_grad():
    with gpunet.no_grad():
        with gpunet.enable_grad():
            assert recorded()
        assert not recorded()

        @gpunet.enable_grad()
        def inner() -> bool:
            return recorded()

        assert inner()


def test_set_grad_enabled_as_function_context_and_decorator():
    with gpunet.set_grad_enabled(False):
        assert not recorded()
    assert recorded()
    try:
        gpunet.set_grad_enabled(False)
        assert not gpunet.is_grad_enabled()
    finally:
        gpunet.set_grad_enabled(True)
    assert gpunet.is_grad_enabled()
    training = False
    with gpunet.set_grad_enabled(training):
        assert not recorded()

    @gpunet.set_grad_enabled(False)
    def step() -> bool:
        return recorded()

    assert recorded()  # decorating changed nothing
    assert step() is False and recorded()


def test_inference_mode():
    with gpunet.inference_mode():
        assert not recorded()
    with gpunet.inference_mode(False):
        assert recorded()

    @gpunet.inference_mode()
    def predict() -> bool:
        return recorded()

    @gpunet.inference_mode
    def bare() -> bool:
        return recorded()

    assert predict() is False and bare() is False and recorded()


def test_exception_inside_no_grad_restores_recording():
    try:
        with gpunet.no_grad():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert recorded()


def test_cuda_questions_agree_with_the_backend_probe():
    ok, _ = gpunet.gpu_status()
    assert gpunet.cuda.is_available() is ok
    count = gpunet.cuda.device_count()
    assert isinstance(count, int) and (count > 0) == ok


def test_importing_gpunet_cuda_loads_no_launcher():
    code = ("import json, sys, gpunet.cuda\n"
            "gpunet.cuda.is_available(); gpunet.cuda.device_count()\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('gpunet.cuda.'))))")
    env = {**os.environ, "GPUNET_QUIET": "1", "GPUNET_BACKEND": "numpy",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    # gpunet.cuda.driver is the pure-Python reader of CUDA runtime errors the backend probe uses, no launcher
    assert [m for m in json.loads(result.stdout) if m != "gpunet.cuda.driver"] == []
