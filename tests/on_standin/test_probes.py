"""The kernel probes (issue 11): ``raw`` and ``numba`` are "usable" only after one tiny kernel
compiled and ran; the probe runs once per process; ``kernels="auto"`` passes over a failing
implementation with a one-time warning saying why; ``gpunet info`` reports "not usable: <why>"."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
import gpunet.functional as F
from gpunet import config
from gpunet.cli import info
from gpunet.cuda import numba_ops, raw_fused, raw_ops, sources
from gpunet.ops import registry
from gpunet.ops.registry import KernelUnavailableError


@pytest.fixture
def loud(monkeypatch):
    """Notices printed (the stand-in run sets GPUNET_QUIET) and not yet seen."""
    monkeypatch.delenv("GPUNET_QUIET", raising=False)
    monkeypatch.setattr(registry, "_noticed", set())


@pytest.fixture
def broken_fused(monkeypatch):
    """kernels/fused.cu as a source that does not compile."""
    real = sources.read_kernel

    def read(name, package_dir=None):
        text = real(name, package_dir)
        return text.replace("namespace fused {", "namespace fused { this does not compile;", 1) \
            if name == "fused.cu" else text

    monkeypatch.setattr(sources, "read_kernel", read)


def _step_on(kernels):
    """A small classifier's training step on CuPy arrays (ReLU, cross-entropy, SGD): it must run,
    whichever implementation is chosen; returns the implementations chosen."""
    with gpunet.use("cupy"), config.set_kernels(kernels):
        gpunet.manual_seed(0)
        model = gpunet.nn.Sequential(gpunet.nn.Linear(6, 8), gpunet.nn.ReLU(), gpunet.nn.Linear(8, 3))
        model.to("cupy")
        opt = gpunet.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x = gpunet.tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)).to("cupy")
        t = gpunet.tensor(np.arange(4) % 3).to("cupy")
        F.cross_entropy(model(x), t).backward()
        opt.step()
        return [registry.resolve(op, "cupy").name for op in ("relu", "cross_entropy", "sgd_step")]


def test_healthy_probe_runs_once(monkeypatch):
    calls = []
    real = raw_ops.probe
    monkeypatch.setattr(raw_ops, "probe", lambda *a: calls.append(1) or real(*a))
    assert _step_on("auto") == ["raw"] * 3
    assert raw_ops.available() and raw_ops.available() is raw_ops.available()
    assert all(why is None for why in registry.usable("raw").values())
    assert len(calls) == 1, f"expected one raw probe per process, got {len(calls)}"
    assert info._kernel_facts(True)["raw"].startswith("usable (")


def test_broken_raw_source_falls_back_with_one_warning(broken_fused, loud, capsys):
    assert _step_on("auto") == ["numba"] * 3
    assert _step_on("auto") == ["numba"] * 3
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "not using the raw kernels" in line]
    assert len(lines) == 1, err
    assert "compiling kernels/fused.cu failed" in lines[0], lines[0]
    fact = info._kernel_facts(True)["raw"]
    assert fact.startswith("not usable: compiling kernels/fused.cu failed"), fact
    with pytest.raises(KernelUnavailableError, match="kernels='raw'.*compiling kernels/fused.cu failed"):
        _step_on("raw")


def test_failing_numba_launch_falls_back_to_cupy(broken_fused, loud, capsys, monkeypatch):
    def fail(self, *args):
        raise RuntimeError("CUDA_ERROR_LAUNCH_FAILED: unspecified launch failure")

    monkeypatch.setattr(numba_ops.NumbaMaxPool, "forward", fail)
    assert _step_on("auto") == ["cupy"] * 3
    err = capsys.readouterr().err
    assert "not using the numba kernels: compiling or launching a probe kernel failed (RuntimeError: " \
           "CUDA_ERROR_LAUNCH_FAILED" in err, err
    assert info._kernel_facts(True)["numba"].startswith("not usable: compiling or launching a probe kernel")
    assert numba_ops.available() == {}


def test_wrong_probe_result_is_a_reason(monkeypatch):
    monkeypatch.setattr(raw_fused.RawRelu, "forward", lambda self, x: (x, x))
    assert "computed wrong values" in raw_ops.unavailable_reason()


@pytest.mark.parametrize("module", [raw_ops, numba_ops], ids=["raw", "numba"])
def test_probe_first_run_inside_allow_synchronize_false_still_passes(module) -> None:
    """The one-time probe reads its result back; run first inside a no-sync step it must not cache a failure."""
    import cupyx

    module.reset_probe()
    with cupyx.allow_synchronize(False):
        assert module.probe() is None
