"""The CuPy paths on a real device (marked ``gpu``; deselected on CPU runs). A job of one process
is enough to run the NCCL communicator, the streams and events, and the host-staged fallback."""

from __future__ import annotations

import numpy
import pytest

import gpunet
from gpunet import distributed as dist
from gpunet import functional as F
from gpunet import nn
from gpunet.distributed import reducers

from .conftest import mpi_missing

pytestmark = [pytest.mark.gpu, pytest.mark.standin]  # standin: also run by tests/test_on_standin.py


@pytest.fixture
def cupy_group():
    why = mpi_missing()
    if why:
        pytest.skip(why)
    with gpunet.use("cupy"):
        dist.init(abort_on_error=False)
        yield


def _step(reducer_name: str, monkeypatch):
    if reducer_name == "mpi-staged":
        monkeypatch.setenv("GPUNET_DIST_NCCL", "0")
    gpunet.manual_seed(0)
    model = nn.MLP([6, 32, 32, 3]).to("cupy")
    reference = nn.MLP([6, 32, 32, 3]).to("cupy")
    reference.load_state_dict(model.state_dict())
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.001)
    assert ddp.reducer.name == reducer_name
    rng = numpy.random.default_rng(0)
    x, t = gpunet.tensor(rng.standard_normal((8, 6))), gpunet.tensor(rng.integers(0, 3, 8))
    F.cross_entropy(ddp(x), t).backward()
    ddp.finish()
    F.cross_entropy(reference(x), t).backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        assert p.device == "cupy"
        numpy.testing.assert_allclose(p.grad.get(), q.grad.get(), rtol=1e-5, atol=1e-7)


def test_nccl_reducer_on_a_device(cupy_group, monkeypatch):
    ok, why = reducers.nccl_status()
    if not ok:
        pytest.skip(why)
    _step("nccl", monkeypatch)


def test_host_staged_fallback_on_a_device(cupy_group, monkeypatch):
    _step("mpi-staged", monkeypatch)
